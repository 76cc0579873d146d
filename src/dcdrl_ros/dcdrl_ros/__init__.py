"""DC-DRL's ROS 2 layer: the backend choice (rclpy or our Cyclone DDS runtime), that runtime, interfaces and messages,
parameters, the launch runner and the dcdrl CLI (ROS 2's ros2 command)."""
