"""Requests bounded at the edge: protobuf integer ranges, size caps, short errors."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pycontainerd.api import bounds, errdefs
from pycontainerd.api.containers import ListContainersRequest
from pycontainerd.api.content import ListContentRequest, ListContentResponse
from pycontainerd.api.convert import structure, structure_request
from pycontainerd.api.events import SubscribeRequest
from pycontainerd.api.images import CreateImageRequest
from pycontainerd.api.tasks import KillRequest, ListTasksRequest, ResizePtyRequest
from pycontainerd.api.types import Namespace


def _invalid(obj: Any, cls: type) -> str:
    with pytest.raises(errdefs.InvalidArgument) as info:
        structure_request(obj, cls)
    return info.value.message


def _image(size: int) -> dict[str, Any]:
    return {"image": {"name": "x", "target": {"size": size}}}


@pytest.mark.parametrize("size", [2**63, 2**64 - 1, -(2**63) - 1])
def test_descriptor_size_is_int64(size: int) -> None:
    message = _invalid(_image(size), CreateImageRequest)
    assert message.startswith("image.target.size: ") and "out of range for int64" in message


@pytest.mark.parametrize("size", [2**63 - 1, -(2**63), 0])
def test_int64_limits_themselves_are_accepted(size: int) -> None:
    assert structure_request(_image(size), CreateImageRequest).image.target.size == size


def test_optional_int_is_int64_too() -> None:
    assert structure_request({"since": None}, SubscribeRequest).since is None
    assert "since: " in _invalid({"since": 2**63}, SubscribeRequest)


@pytest.mark.parametrize(
    ("obj", "cls", "field"),
    [
        ({"signal": -1}, KillRequest, "signal"),
        ({"signal": 2**32}, KillRequest, "signal"),
        ({"width": -1}, ResizePtyRequest, "width"),
        ({"height": 2**32}, ResizePtyRequest, "height"),
    ],
)
def test_uint32_fields(obj: dict[str, Any], cls: type, field: str) -> None:
    message = _invalid(obj, cls)
    assert message.startswith(f"{field}: ") and "uint32" in message


def test_uint32_limits_are_accepted() -> None:
    assert structure_request({"signal": 2**32 - 1}, KillRequest).signal == 2**32 - 1
    assert structure_request({"width": 0, "height": 80}, ResizePtyRequest).height == 80


def test_bool_is_not_an_int_whatever_the_range() -> None:
    assert "expected int, got bool" in _invalid({"signal": True}, KillRequest)


def test_strings_are_capped() -> None:
    long = "n" * (bounds.MAX_STRING + 1)
    message = _invalid({"image": {"name": long}}, CreateImageRequest)
    assert message == f"image.name: string of {len(long)} characters, at most {bounds.MAX_STRING}"
    name = "n" * bounds.MAX_STRING
    assert structure_request({"image": {"name": name}}, CreateImageRequest).image.name == name


def test_filters_are_capped_in_count_and_length() -> None:
    many = ["a"] * (bounds.MAX_FILTERS + 1)
    assert _invalid({"filters": many}, ListContentRequest) == (
        f"filters: array of {len(many)} items, at most {bounds.MAX_FILTERS}"
    )
    long = "x" * (bounds.MAX_FILTER_LENGTH + 1)
    message = _invalid({"filters": ["ok", long]}, ListContainersRequest)
    assert message.startswith("filters[1]: string of ")
    assert _invalid({"filter": long}, ListTasksRequest).startswith("filter: string of")
    fine = ["name==x"] * bounds.MAX_FILTERS
    assert structure_request({"filters": fine}, ListContentRequest).filters == fine


def test_lists_and_maps_are_capped() -> None:
    labels = {str(i): "v" for i in range(bounds.MAX_ITEMS + 1)}
    message = _invalid({"name": "n", "labels": labels}, Namespace)
    assert message == f"labels: map of {len(labels)} entries, at most {bounds.MAX_ITEMS}"


def test_a_million_bad_items_cost_one_short_message() -> None:
    start = time.monotonic()
    message = _invalid({"filters": [0] * 1_000_000}, ListContentRequest)
    assert time.monotonic() - start < 0.5
    assert message == f"filters: array of 1000000 items, at most {bounds.MAX_FILTERS}"
    message = _invalid({"filters": [0] * bounds.MAX_FILTERS}, ListContentRequest)
    assert message == "filters[0]: expected str, got int"  # the first bad item only


def test_map_errors_stop_at_the_first_bad_entry_and_cut_the_key() -> None:
    labels: dict[str, Any] = {"k" * 1000: 1, "other": 2}
    message = _invalid({"name": "n", "labels": labels}, Namespace)
    assert message == "labels['" + "k" * 36 + "...]: expected str, got int"


def test_errors_of_many_fields_are_few_and_short() -> None:
    obj = {"image": {"name": 1, "labels": 2, "target": {"media_type": 3, "digest": 4, "size": "x"}}}
    message = _invalid(obj, CreateImageRequest)
    assert message.endswith("; and 1 more") and message.count(";") == 4
    assert len(message) < 400


def test_responses_are_not_capped_in_size() -> None:
    info = [{"digest": f"sha256:{i}", "size": i} for i in range(bounds.MAX_ITEMS + 1)]
    listed = structure({"info": info}, ListContentResponse).info
    assert len(listed) == bounds.MAX_ITEMS + 1
    with pytest.raises(errdefs.InvalidArgument, match="int64"):
        structure({"info": [{"size": 2**63}]}, ListContentResponse)


def test_bounds_metadata_names_a_known_type() -> None:
    with pytest.raises(ValueError, match="unknown integer type"):
        bounds.bounds(int_type="int128")
