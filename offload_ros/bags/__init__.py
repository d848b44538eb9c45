"""rosbag2 tools without rosbag2: written and read with the rosbags library (Kilted
typestore), published and recorded with rclpy."""
