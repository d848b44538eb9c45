"""Topic names, in one place. Relative names: they follow the node's namespace and remaps."""
IMAGE = 'image_raw'
IMAGE_COMPRESSED = 'image_raw/compressed'
DETECTIONS = 'detections'
TRACKS = 'tracks'
CMD_VEL = 'cmd_vel'
DECISIONS = 'offload/decisions'
DEADLINE = 'offload/deadline'
DIAGNOSTICS = '/diagnostics'
