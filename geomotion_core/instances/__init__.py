# SPDX-License-Identifier: Apache-2.0
"""Moving objects as instances: split motion masks into objects with ids that persist across frames."""
from geomotion_core.instances.config import InstanceConfig
from geomotion_core.instances.tracker import InstanceFrame, InstanceObject, InstanceTracker

__all__ = ["InstanceConfig", "InstanceFrame", "InstanceObject", "InstanceTracker"]
