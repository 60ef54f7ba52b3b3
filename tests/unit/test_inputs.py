"""From ``/imagine`` options to a model's inputs: own range checks, schema reading, mapping and refusals."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bot.api.inputs import ASPECT_RATIOS, ImagineOptions, InputSchema, Property, plan_inputs
from bot.api.uploads import IMAGE_MAX_BYTES, check_image_upload
from bot.base.errors import InputRejected
from tests.fakes.replicate import FLUX_SCHNELL_OPENAPI_SCHEMA

SPEC_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9", "9:21", "4:5", "5:4")


def cog_enum(name: str, values: list[Any], kind: str = "string") -> dict[str, Any]:
    """A Cog-style enum schema, as it appears under ``components.schemas``."""
    return {"title": name, "description": "An enumeration.", "enum": values, "type": kind}


def flux_schnell_document() -> dict[str, Any]:
    """flux-schnell's Cog OpenAPI document as the fake API serves it, plus a ``guidance`` number without ``x-order``."""
    document = copy.deepcopy(FLUX_SCHNELL_OPENAPI_SCHEMA)
    document["components"]["schemas"]["Input"]["properties"]["guidance"] = {
        "title": "Guidance",
        "type": "number",
        "default": 3.5,
        "minimum": 0,
        "maximum": 10,
    }
    return document


def schema_from(document: dict[str, Any]) -> InputSchema:
    schema = InputSchema.from_openapi(document)
    assert schema is not None
    return schema


def minimal_document(properties: dict[str, Any], **extra_schemas: Any) -> dict[str, Any]:
    return {"components": {"schemas": {"Input": {"type": "object", "properties": properties}, **extra_schemas}}}


FLUX = schema_from(flux_schnell_document())
PROMPT_ONLY = schema_from(minimal_document({"prompt": {"type": "string"}}))


def width_height_schema(minimum: int = 256, maximum: int = 2048) -> InputSchema:
    size = {"type": "integer", "minimum": minimum, "maximum": maximum, "default": 1024}
    return schema_from(
        minimal_document({"prompt": {"type": "string"}, "width": dict(size), "height": dict(size), "seed": {}})
    )


# --------------------------------------------------------------------------- ImagineOptions.check


def test_aspect_ratios_match_spec() -> None:
    assert ASPECT_RATIOS == SPEC_RATIOS


@pytest.mark.parametrize(
    "options",
    [
        ImagineOptions("a cat"),
        ImagineOptions("x" * 1500),
        ImagineOptions("x", count=1),
        ImagineOptions("x", count=4),
        ImagineOptions("x", seed=0),
        ImagineOptions("x", seed=2**40),
        *(ImagineOptions("x", aspect_ratio=ratio) for ratio in SPEC_RATIOS),
    ],
)
def test_check_accepts(options: ImagineOptions) -> None:
    options.check()


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (ImagineOptions(""), "empty"),
        (ImagineOptions("   \n\t "), "empty"),
        (ImagineOptions("x" * 1501), "1501"),
        (ImagineOptions("x", count=0), "count"),
        (ImagineOptions("x", count=5), "count"),
        (ImagineOptions("x", count=-1), "count"),
        (ImagineOptions("x", seed=-1), "seed"),
        (ImagineOptions("x", aspect_ratio="7:3"), "aspect_ratio"),
        (ImagineOptions("x", aspect_ratio="16x9"), "aspect_ratio"),
    ],
)
def test_check_refuses(options: ImagineOptions, words: str) -> None:
    with pytest.raises(InputRejected) as caught:
        options.check()
    assert words in str(caught.value)


def test_prompt_limit_message_names_the_limit() -> None:
    with pytest.raises(InputRejected, match="1500"):
        ImagineOptions("y" * 2000).check()


# --------------------------------------------------------------------------- InputSchema.from_openapi


def test_from_openapi_reads_cog_document() -> None:
    props = FLUX.properties
    assert set(props) == {
        "prompt",
        "aspect_ratio",
        "num_outputs",
        "num_inference_steps",
        "seed",
        "output_format",
        "output_quality",
        "disable_safety_checker",
        "go_fast",
        "megapixels",
        "guidance",
    }
    assert FLUX.required == frozenset({"prompt"})
    assert props["aspect_ratio"] == Property(
        name="aspect_ratio",
        type="string",
        enum=("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"),
        default="1:1",
    )
    assert props["num_outputs"] == Property("num_outputs", "integer", None, 1.0, 4.0, 1)
    assert props["output_format"].enum == ("webp", "jpg", "png")
    assert props["output_format"].default == "webp"
    assert props["megapixels"].enum == ("1", "0.25")
    assert props["go_fast"].type == "boolean"
    assert props["go_fast"].default is True
    assert props["guidance"].type == "number"
    assert (props["guidance"].minimum, props["guidance"].maximum) == (0.0, 10.0)
    assert props["seed"].minimum is None and props["seed"].default is None
    assert all(FLUX.has(name) for name in props)
    assert not FLUX.has("width")


def test_from_openapi_direct_ref_and_local_override() -> None:
    document = minimal_document(
        {"scheduler": {"$ref": "#/components/schemas/scheduler", "default": "K_EULER"}},
        scheduler=cog_enum("scheduler", ["DDIM", "K_EULER"]),
    )
    prop = schema_from(document).properties["scheduler"]
    assert prop.enum == ("DDIM", "K_EULER")
    assert prop.type == "string"
    assert prop.default == "K_EULER"


def test_from_openapi_ignores_booleans_as_bounds_and_unknown_refs() -> None:
    document = minimal_document(
        {
            "a": {"type": "integer", "minimum": True, "maximum": "10"},
            "b": {"allOf": [{"$ref": "#/components/schemas/missing"}], "default": 3},
            "c": {"allOf": [{"$ref": "http://elsewhere/schema"}]},
            "d": "not a property",
        }
    )
    schema = schema_from(document)
    assert schema.properties["a"].minimum is None
    assert schema.properties["a"].maximum is None
    assert schema.properties["b"].default == 3
    assert schema.properties["b"].enum is None
    assert schema.properties["c"] == Property("c")
    assert "d" not in schema.properties


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"components": {}},
        {"components": {"schemas": {}}},
        {"components": {"schemas": []}},
        {"components": {"schemas": {"Input": "nope"}}},
        {"components": {"schemas": {"Input": {"type": "object"}}}},
        {"components": {"schemas": {"Output": {"type": "string"}}}},
    ],
)
def test_from_openapi_without_usable_input(document: dict[str, Any]) -> None:
    assert InputSchema.from_openapi(document) is None


def test_from_openapi_does_not_mutate_document() -> None:
    document = flux_schnell_document()
    before = copy.deepcopy(document)
    InputSchema.from_openapi(document)
    assert document == before


# --------------------------------------------------------------------------- plan_inputs


def test_plan_full_flux_request() -> None:
    planned = plan_inputs(ImagineOptions("a red fox", aspect_ratio="16:9", count=3, seed=42), FLUX)
    assert planned.inputs == {"prompt": "a red fox", "num_outputs": 3, "aspect_ratio": "16:9", "seed": 42}
    assert planned.notes == ()
    assert planned.images_expected == 3


def test_plan_only_prompt() -> None:
    planned = plan_inputs(ImagineOptions("a red fox"), FLUX)
    assert planned.inputs == {"prompt": "a red fox"}
    assert planned.images_expected == 1
    assert planned.notes == ()


@pytest.mark.parametrize(
    ("count_name", "expected_key"),
    [("num_outputs", "num_outputs"), ("num_images", "num_images"), ("batch_size", "batch_size")],
)
def test_count_goes_to_the_models_count_input(count_name: str, expected_key: str) -> None:
    schema = schema_from(minimal_document({"prompt": {"type": "string"}, count_name: {"type": "integer"}}))
    planned = plan_inputs(ImagineOptions("p", count=2), schema)
    assert planned.inputs == {"prompt": "p", expected_key: 2}
    assert planned.images_expected == 2


def test_options_the_model_lacks_are_left_out_with_notes() -> None:
    planned = plan_inputs(ImagineOptions("p", aspect_ratio="16:9", count=3, seed=7), PROMPT_ONLY)
    assert planned.inputs == {"prompt": "p"}
    assert planned.images_expected == 1
    assert len(planned.notes) == 3
    joined = "\n".join(map(str, planned.notes))
    assert "count 3" in joined
    assert "16:9" in joined
    assert "seed" in joined


def test_count_one_on_single_image_model_needs_no_note() -> None:
    planned = plan_inputs(ImagineOptions("p", count=1), PROMPT_ONLY)
    assert planned.inputs == {"prompt": "p"}
    assert planned.notes == ()


@pytest.mark.parametrize("ratio", SPEC_RATIOS)
def test_width_height_derived_from_ratio(ratio: str) -> None:
    schema = width_height_schema()
    planned = plan_inputs(ImagineOptions("p", aspect_ratio=ratio), schema)
    assert "aspect_ratio" not in planned.inputs
    width, height = planned.inputs["width"], planned.inputs["height"]
    assert width % 64 == 0 and height % 64 == 0
    assert 256 <= width <= 2048 and 256 <= height <= 2048
    w, h = (int(part) for part in ratio.split(":"))
    assert width / height == pytest.approx(w / h, rel=0.12)
    assert 0.7 * 1024 * 1024 <= width * height <= 1.3 * 1024 * 1024
    assert planned.notes == ()


def test_square_ratio_is_one_megapixel() -> None:
    planned = plan_inputs(ImagineOptions("p", aspect_ratio="1:1"), width_height_schema())
    assert (planned.inputs["width"], planned.inputs["height"]) == (1024, 1024)


@pytest.mark.parametrize("ratio", ["1:1", "4:3", "3:4", "5:4"])
def test_width_height_within_tight_bounds(ratio: str) -> None:
    planned = plan_inputs(ImagineOptions("p", aspect_ratio=ratio), width_height_schema(minimum=512, maximum=1024))
    for key in ("width", "height"):
        assert 512 <= planned.inputs[key] <= 1024
        assert planned.inputs[key] % 64 == 0


@pytest.mark.parametrize("ratio", ["16:9", "9:16", "21:9"])
def test_clamped_dimensions_keep_the_aspect_ratio(ratio: str) -> None:
    planned = plan_inputs(ImagineOptions("p", aspect_ratio=ratio), width_height_schema(minimum=256, maximum=1024))
    width, height = planned.inputs["width"], planned.inputs["height"]
    assert width <= 1024 and height <= 1024
    w, h = (int(part) for part in ratio.split(":"))
    assert width / height == pytest.approx(w / h, rel=0.12)


def test_schema_with_only_width_has_no_aspect_ratio() -> None:
    schema = schema_from(minimal_document({"prompt": {"type": "string"}, "width": {"type": "integer"}}))
    planned = plan_inputs(ImagineOptions("p", aspect_ratio="16:9"), schema)
    assert planned.inputs == {"prompt": "p"}
    assert any("16:9" in str(note) for note in planned.notes)


def test_aspect_ratio_preferred_over_width_height() -> None:
    document = flux_schnell_document()
    props = document["components"]["schemas"]["Input"]["properties"]
    props["width"] = {"type": "integer"}
    props["height"] = {"type": "integer"}
    planned = plan_inputs(ImagineOptions("p", aspect_ratio="3:2"), schema_from(document))
    assert planned.inputs == {"prompt": "p", "aspect_ratio": "3:2"}


def test_enum_violation_names_field_and_allowed_values() -> None:
    schema = schema_from(
        minimal_document(
            {"prompt": {"type": "string"}, "aspect_ratio": {"allOf": [{"$ref": "#/components/schemas/ar"}]}},
            ar=cog_enum("ar", ["1:1", "16:9", "9:16"]),
        )
    )
    with pytest.raises(InputRejected) as caught:
        plan_inputs(ImagineOptions("p", aspect_ratio="21:9"), schema)
    message = str(caught.value)
    assert "aspect_ratio" in message
    assert "'21:9'" in message
    assert "1:1, 16:9, 9:16" in message


@pytest.mark.parametrize(
    ("options", "field", "bound"),
    [
        (ImagineOptions("p", count=4), "num_outputs", "up to 2"),
        (ImagineOptions("p", seed=3), "seed", "at least 10"),
        (ImagineOptions("p", seed=5000), "seed", "up to 4096"),
        (ImagineOptions("p", extra={"num_inference_steps": "5"}), "num_inference_steps", "up to 4"),
        (ImagineOptions("p", extra={"num_inference_steps": "0"}), "num_inference_steps", "at least 1"),
        (ImagineOptions("p", extra={"guidance": "10.5"}), "guidance", "up to 10"),
        (ImagineOptions("p", extra={"guidance": "-0.1"}), "guidance", "at least 0"),
        (ImagineOptions("p", extra={"output_quality": "101"}), "output_quality", "up to 100"),
    ],
)
def test_min_max_violations(options: ImagineOptions, field: str, bound: str) -> None:
    document = flux_schnell_document()
    props = document["components"]["schemas"]["Input"]["properties"]
    props["num_outputs"]["maximum"] = 2
    props["seed"].update(minimum=10, maximum=4096)
    with pytest.raises(InputRejected) as caught:
        plan_inputs(options, schema_from(document))
    message = str(caught.value)
    assert field in message
    assert bound in message


def test_bounds_are_inclusive() -> None:
    planned = plan_inputs(
        ImagineOptions("p", count=4, extra={"num_inference_steps": "1", "output_quality": "0", "guidance": "10"}), FLUX
    )
    assert planned.inputs["num_outputs"] == 4
    assert planned.inputs["num_inference_steps"] == 1
    assert planned.inputs["output_quality"] == 0
    assert planned.inputs["guidance"] == 10.0


def test_own_range_checked_before_schema() -> None:
    with pytest.raises(InputRejected, match="count"):
        plan_inputs(ImagineOptions("p", count=9), None)


def test_no_schema_sends_everything_under_usual_names() -> None:
    planned = plan_inputs(ImagineOptions("p", aspect_ratio="9:16", count=2, seed=0), None)
    assert planned.inputs == {"prompt": "p", "num_outputs": 2, "aspect_ratio": "9:16", "seed": 0}
    assert planned.notes == ()
    assert planned.images_expected == 2


@pytest.mark.parametrize(
    ("key", "raw", "value"),
    [
        ("num_inference_steps", "3", 3),
        ("num_inference_steps", " 2 ", 2),
        ("guidance", "3.5", 3.5),
        ("guidance", "7", 7.0),
        ("go_fast", "false", False),
        ("go_fast", "FALSE", False),
        ("go_fast", "0", False),
        ("go_fast", "no", False),
        ("go_fast", "off", False),
        ("disable_safety_checker", "true", True),
        ("disable_safety_checker", "1", True),
        ("disable_safety_checker", "Yes", True),
        ("disable_safety_checker", "on", True),
        ("output_format", "png", "png"),
        ("megapixels", "0.25", "0.25"),
        ("megapixels", "1", "1"),
    ],
)
def test_extra_values_coerced_by_schema_type(key: str, raw: str, value: Any) -> None:
    planned = plan_inputs(ImagineOptions("p", extra={key: raw}), FLUX)
    assert planned.inputs[key] == value
    assert type(planned.inputs[key]) is type(value)


@pytest.mark.parametrize(
    ("key", "raw", "kind"),
    [
        ("num_inference_steps", "three", "integer"),
        ("num_inference_steps", "2.5", "integer"),
        ("guidance", "high", "number"),
        ("go_fast", "maybe", "boolean"),
        ("go_fast", "", "boolean"),
    ],
)
def test_extra_values_of_wrong_type_refused(key: str, raw: str, kind: str) -> None:
    with pytest.raises(InputRejected) as caught:
        plan_inputs(ImagineOptions("p", extra={key: raw}), FLUX)
    message = str(caught.value)
    assert key in message
    assert kind in message
    assert repr(raw) in message


def test_extra_enum_value_refused_with_allowed_values() -> None:
    with pytest.raises(InputRejected) as caught:
        plan_inputs(ImagineOptions("p", extra={"output_format": "gif"}), FLUX)
    message = str(caught.value)
    assert "output_format" in message
    assert "webp, jpg, png" in message


def test_unknown_extra_key_refused() -> None:
    with pytest.raises(InputRejected) as caught:
        plan_inputs(ImagineOptions("p", extra={"lora_scale": "0.8"}), FLUX)
    assert "'lora_scale'" in str(caught.value)


def test_non_string_extra_values_kept_as_given() -> None:
    planned = plan_inputs(ImagineOptions("p", extra={"num_inference_steps": 2, "go_fast": False}), FLUX)
    assert planned.inputs["num_inference_steps"] == 2
    assert planned.inputs["go_fast"] is False


def test_boolean_is_not_an_integer() -> None:
    with pytest.raises(InputRejected, match="whole number"):
        plan_inputs(ImagineOptions("p", extra={"num_inference_steps": True}), FLUX)


@pytest.mark.parametrize(
    ("raw", "value"),
    [("1", 1), ("2.5", 2.5), ("true", True), ("null", None), ('["a", 1]', ["a", 1]), ("x", "x"), ("", "")],
)
def test_extra_without_schema_read_as_json_or_text(raw: str, value: Any) -> None:
    planned = plan_inputs(ImagineOptions("p", extra={"anything": raw}), None)
    assert planned.inputs["anything"] == value


def test_extra_untyped_property_read_as_json() -> None:
    schema = schema_from(minimal_document({"prompt": {"type": "string"}, "loose": {}}))
    assert plan_inputs(ImagineOptions("p", extra={"loose": "12"}), schema).inputs["loose"] == 12


@pytest.mark.parametrize(
    ("schema", "options", "expected"),
    [
        (None, ImagineOptions("p"), 1),
        (None, ImagineOptions("p", count=4), 4),
        (FLUX, ImagineOptions("p", count=2), 2),
        (FLUX, ImagineOptions("p", extra={"num_outputs": "3"}), 3),
        (FLUX, ImagineOptions("p"), 1),
        (PROMPT_ONLY, ImagineOptions("p", count=4), 1),
    ],
)
def test_images_expected(schema: InputSchema | None, options: ImagineOptions, expected: int) -> None:
    assert plan_inputs(options, schema).images_expected == expected


# --------------------------------------------------------------------------- images to start from

CDN = "https://cdn.discordapp.com/attachments/1/2/start.png?ex=1&is=2&hm=3"
URI = {"type": "string", "format": "uri"}


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"prompt": {"type": "string"}, "image": URI}, "image"),
        ({"prompt": {"type": "string"}, "input_image": URI, "prompt_strength": {"type": "number"}}, "input_image"),
        ({"prompt": {"type": "string"}, "image_prompt": URI}, "image_prompt"),
        ({"prompt": {"type": "string"}, "init_image": {"type": "string"}}, "init_image"),
        ({"prompt": {"type": "string"}, "reference_image": URI}, "reference_image"),  # by format and name
        ({"prompt": {"type": "string"}, "control_image": URI, "mask_image": URI}, None),  # other meanings
        ({"prompt": {"type": "string"}, "image_size": {"type": "string"}}, None),
        ({"prompt": {"type": "string"}}, None),
    ],
)
def test_the_image_input_is_read_from_the_schema(properties: dict[str, Any], expected: str | None) -> None:
    assert schema_from(minimal_document(properties)).image_input == expected


def test_the_strength_input_is_found_and_left_at_its_default() -> None:
    schema = schema_from(
        minimal_document({"prompt": {"type": "string"}, "image": URI, "prompt_strength": {"type": "number"}})
    )
    assert schema.strength_input == "prompt_strength"
    planned = plan_inputs(ImagineOptions("a fox", image=CDN), schema)
    assert planned.inputs == {"prompt": "a fox", "image": CDN}
    assert planned.image_input == "image" and not planned.notes


def test_an_image_for_a_model_that_takes_none_is_refused() -> None:
    with pytest.raises(InputRejected, match="takes no image"):
        plan_inputs(ImagineOptions("a fox", image=CDN), FLUX)
    assert plan_inputs(ImagineOptions("a fox"), FLUX).image_input is None


def test_an_image_only_model_gets_no_prompt_and_needs_its_image() -> None:
    upscaler = schema_from(
        {"components": {"schemas": {"Input": {"type": "object", "required": ["image"], "properties": {"image": URI}}}}}
    )
    assert plan_inputs(ImagineOptions("a fox", image=CDN), upscaler).inputs == {"image": CDN}
    with pytest.raises(InputRejected, match="needs an image"):
        plan_inputs(ImagineOptions("a fox"), upscaler)


def test_without_a_schema_the_image_goes_as_image_with_a_note() -> None:
    planned = plan_inputs(ImagineOptions("a fox", image=CDN), None)
    assert planned.inputs["image"] == CDN
    assert planned.image_input is None  # unknown: no V buttons
    assert any("`image`" in str(note) for note in planned.notes)


def test_the_image_is_given_once() -> None:
    schema = schema_from(minimal_document({"prompt": {"type": "string"}, "image": URI}))
    with pytest.raises(InputRejected, match="once"):
        plan_inputs(ImagineOptions("a fox", image=CDN, extra={"image": "https://elsewhere/x.png"}), schema)


@pytest.mark.parametrize(
    ("content_type", "size", "reason"),
    [
        ("text/plain", 10, "not an image"),
        (None, 10, "not an image"),
        ("image/svg+xml", 10, "cannot read"),
        ("image/png", IMAGE_MAX_BYTES + 1, "MiB"),
    ],
)
def test_uploads_that_cannot_be_an_image_input_are_refused(content_type: str | None, size: int, reason: str) -> None:
    with pytest.raises(InputRejected, match=reason):
        check_image_upload(content_type, size)


def test_usual_images_are_accepted() -> None:
    for kind in ("image/png", "image/jpeg", "IMAGE/WEBP", "image/gif; charset=binary"):
        check_image_upload(kind, IMAGE_MAX_BYTES)
