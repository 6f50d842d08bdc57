"""Validation changes one DictConfig from config to config: it must be what OmegaConf.create
gives for each, or torchtune's verdict and ours would be on another config."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from torchtune_config_writer.validation.torchtune_runtime import ReusedConfig

# Values of one shape, so that most configs in turn change in place; types and interpolations
# change between them (1, 1.0 and true must stay apart, "???" is OmegaConf's missing value).
leaf = st.sampled_from(
    [0, 1, 1.0, True, False, None, "a", "", "???", "${top}", "${top}/logs", "${nested.x}", 2e-5]
)


def config(values: list[Any], extra: bool) -> dict[str, Any]:
    first, second, third, fourth = values
    data: dict[str, Any] = {
        "top": first,
        "nested": {"x": second, "y": [third, fourth]},
        "list": [{"a": second}, {"b": third}],
    }
    if extra:  # another shape: built afresh
        data["nested"]["added"] = fourth
    return data


def as_created(cfg: Any) -> tuple[str, Any]:
    return OmegaConf.to_yaml(cfg), OmegaConf.to_container(cfg, resolve=False)


def resolved(cfg: Any, key: str) -> Any:
    try:
        return ("value", OmegaConf.select(cfg, key, throw_on_resolution_failure=True))
    except Exception as exc:  # noqa: BLE001 - the failure must be the same too
        return ("error", type(exc).__name__)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.lists(leaf, min_size=4, max_size=4), st.booleans()), max_size=8))
@pytest.mark.slow
def test_each_config_is_what_omegaconf_creates(sequence: list[tuple[list[Any], bool]]) -> None:
    reused = ReusedConfig()
    for values, extra in sequence:
        data = config(values, extra)
        cfg = reused.config(data)
        fresh = OmegaConf.create(data)
        assert as_created(cfg) == as_created(fresh)
        assert OmegaConf.to_container(cfg, resolve=False) == data
        for key in ("top", "nested.x", "nested.y.0", "list.1.b"):
            assert resolved(cfg, key) == resolved(fresh, key)
            assert type(OmegaConf.select(cfg, key, throw_on_resolution_failure=False)) is type(
                OmegaConf.select(fresh, key, throw_on_resolution_failure=False)
            )


def test_a_value_that_changes_type_is_set_in_place() -> None:
    reused = ReusedConfig()
    first = reused.config({"a": {"b": 1}})
    second = reused.config({"a": {"b": 1.0}})
    assert second is first  # changed in place, not built again
    assert type(second.a.b) is float
    third = reused.config({"a": {"b": 1.0, "c": 2}})
    assert OmegaConf.to_container(third) == {"a": {"b": 1.0, "c": 2}}


def test_a_value_omegaconf_refuses_leaves_the_next_config_built_afresh() -> None:
    import pytest

    reused = ReusedConfig()
    reused.config({"a": 1, "b": "x"})
    with pytest.raises(Exception):  # noqa: B017 - OmegaConf's grammar error, whatever its class
        reused.config({"a": 2, "b": "${broken"})
    # `a` was set to 2 before `b` failed: the next config must not start from that half.
    assert OmegaConf.to_container(reused.config({"a": 1, "b": "y"})) == {"a": 1, "b": "y"}
