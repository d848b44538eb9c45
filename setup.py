# Copyright 2026 offload_ros maintainers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""ament_python package offload_ros: builds with colcon on a robot unchanged."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'offload_ros'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', glob('launch/*.launch.xml')),
        ('share/' + PACKAGE + '/config', glob('config/*.yaml') + glob('config/*.xml')),
        ('share/' + PACKAGE + '/config/scenarios', glob('config/scenarios/*.yaml')),
        ('share/' + PACKAGE + '/config/triton/yolov3_tiny',
         glob('config/triton/yolov3_tiny/*.pbtxt')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='offload_ros maintainers',
    maintainer_email='maintainers@offload-ros.example.org',
    description='Queueing-model-driven offloading of object detection for ROS 2 robots.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'offload_plan = offload_ros.tools.plan:main',
            'offload_detect = offload_ros.tools.detect:main',
            'offload_model = offload_ros.inference.models:main',
            'offload_launch = offload_ros.tools.launch:main',
            'offload_report = offload_ros.tools.report:main',
            'bag_from_video = offload_ros.bags.from_video:main',
            'bag_replay = offload_ros.bags.replay:main',
            'bag_record = offload_ros.bags.record:main',
            'offload_scenario = offload_ros.scenarios.harness:main',
            'offload_loadgen = offload_ros.scenarios.loadgen:main',
            'gpu_worker = offload_ros.worker.server:main',
            'camera_node = offload_ros.nodes.camera_node:main',
            'offload_node = offload_ros.nodes.offload_node:main',
            'tracker_node = offload_ros.nodes.tracker_node:main',
            'controller_node = offload_ros.nodes.controller_node:main',
            'deadline_monitor_node = offload_ros.nodes.deadline_monitor_node:main',
        ],
    },
)
