"""ROS-free core: queueing models, predictions, estimators, policy, tracking and control maths."""
