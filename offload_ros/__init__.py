"""offload_ros: queueing-model-driven offloading of object detection for ROS 2 robots."""
