from typing import Annotated

import pytest
from pydantic import Field

from acoustack.config import Settings
from acoustack.errors import ConfigError


class Example(Settings):
    url: Annotated[str, Field(description="where the thing is")]
    port: Annotated[int, Field(ge=1, le=65535, description="its port")] = 80
    ratio: float = 0.5


def test_values_come_from_prefixed_variables_with_types():
    s = Example.load("SVC", {"SVC_URL": "x://y", "SVC_PORT": "8080"})
    assert (s.url, s.port, s.ratio) == ("x://y", 8080, 0.5)


def test_every_problem_is_reported_with_the_variable_name():
    with pytest.raises(ConfigError) as info:
        Example.load("SVC", {"SVC_PORT": "0", "SVC_RATIO": "half"})
    text = str(info.value)
    assert "SVC_URL: Field required (not set) — where the thing is" in text
    assert "SVC_PORT: Input should be greater than or equal to 1 (got '0') — its port" in text
    assert "SVC_RATIO: Input should be a valid number" in text


def test_an_empty_variable_counts_as_unset():
    assert Example.load("SVC", {"SVC_URL": "u", "SVC_PORT": ""}).port == 80


def test_settings_are_frozen():
    s = Example.load("SVC", {"SVC_URL": "u"})
    with pytest.raises(Exception, match="frozen"):
        s.port = 1
