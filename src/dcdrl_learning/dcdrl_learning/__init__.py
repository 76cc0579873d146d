"""DC-DRL learning blocks, no ROS import: networks, agents, replay, the weight codec (numpy half for the edge, torch
half for the cloud), checkpoints, collective merge, run logs, and the experience and weights message forms."""
