"""Learning blocks with no ROS import: networks, agents, replay, weight codec, checkpoints, collective merge."""
