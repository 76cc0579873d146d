"""rosbag2 directories (metadata.yaml + MCAP files) recorded, read and played without ROS 2 (PyPI `mcap`)."""
