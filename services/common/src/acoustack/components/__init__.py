"""Components: the pieces the task templates are built from (acoupi's interfaces, PARITY 17–20).

``types`` holds the interfaces; any object with the right methods can be passed in. The built-ins here
need nothing but the schema, so every service and any third-party program can use them.
"""

from acoustack.components.cleaners import ThresholdDetectionCleaner
from acoustack.components.filters import AlwaysProcess, MinimumDurationFilter
from acoustack.components.messages import (
    DetectionThresholdMessageBuilder,
    FullModelOutputMessageBuilder,
)

__all__ = [
    "AlwaysProcess",
    "DetectionThresholdMessageBuilder",
    "FullModelOutputMessageBuilder",
    "MinimumDurationFilter",
    "ThresholdDetectionCleaner",
]
