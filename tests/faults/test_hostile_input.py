"""Hostile input: prompts, option values, model references and settings that try to break or abuse the bot.

Property-based (hypothesis, derandomized: the same examples on every run) over the pure layers, where
breadth is cheap: :meth:`ImagineOptions.check`, :func:`plan_inputs` (cross-checked against the fake
API's own input validation), :meth:`ModelRef.parse`, :func:`load_settings`, :func:`render_embed` and the
prediction objects the API sends back. Then a handful of ``/imagine`` runs through the fake Discord with
nasty prompts and model names, checking what every message the bot made would really ping
(the fake computes ``mentions``/``mention_roles``/``mention_everyone`` from content and
``allowed_mentions`` as Discord does): nobody, except the requester where that is the point (a result
posted anew after its message was deleted).

The contract: always a clear refusal or a normal job; never a crash; never a ping of ``@everyone``,
``@here`` or a role.
"""

from __future__ import annotations

import asyncio
import math
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.api.errors import ServerError
from bot.api.inputs import ASPECT_RATIOS, PROMPT_MAX, ImagineOptions, InputSchema, plan_inputs
from bot.api.modelref import InvalidModelRef, ModelRef
from bot.api.predictions import Prediction, Progress
from bot.base.errors import ImagineError, InputRejected
from bot.discord_app.render import render_embed
from bot.jobs.engine import JobRequest, JobState, JobView
from bot.media.images import ImageFile
from bot.settings import Secret, SettingsError, load_settings
from tests.e2e.conftest import Stack, StackFactory, field_of, imagine_in, is_terminal, status_of
from tests.fakes.discord import StoredMessage
from tests.fakes.replicate import (
    FLUX_SCHNELL_LORA_OPENAPI_SCHEMA,
    FLUX_SCHNELL_OPENAPI_SCHEMA,
    Scenario,
    validate_input,
)
from tests.faults.conftest import UnhandledWatch

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# --------------------------------------------------------------------------- strategies

PINGS = ("@everyone", "@here", "<@&123456789012345678>", "<@123456789012345678>", "<@!42>", "<#1234>")
NASTY = (
    *PINGS,
    "\u200f",  # right-to-left mark
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\u200b",  # zero-width space
    "\ufeff",  # byte order mark
    "\x00",
    "\x07",
    "\x1b[31m",
    "\r\n",
    "\t",
    "🦊",
    "👨‍👩‍👧‍👦",
    "🏳️‍🌈",
    "ｃａｔ",
    "`",
    "```",
    "**",
    "||spoiler||",
    "\\",
    '"',
    "${jndi:ldap://x/a}",
    "%s%n",
    "{0}",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "\U0010ffff",
)
fragments = st.one_of(st.sampled_from(NASTY), st.text(max_size=12))
prompts = st.one_of(
    st.lists(fragments, max_size=12).map("".join),
    st.text(max_size=40),
    st.builds(lambda piece, n: (piece * n)[: n + 3], st.sampled_from(NASTY), st.integers(1400, 1600)),
    st.sampled_from(["", " ", "\n\t ", "\u3000", "a" * PROMPT_MAX, "a" * (PROMPT_MAX + 1), "🦊" * PROMPT_MAX]),
)
aspect_ratios = st.one_of(st.none(), st.sampled_from(ASPECT_RATIOS), st.text(max_size=8))
counts = st.one_of(st.none(), st.integers(-3, 8), st.integers())
seeds = st.one_of(st.none(), st.integers(-(2**70), 2**70))


def plainly_valid(prompt: str) -> bool:
    """A prompt nobody could call empty: it has a letter or digit, and fits."""
    return any(ch.isalnum() for ch in prompt) and len(prompt) <= PROMPT_MAX


# --------------------------------------------------------------------------- options


@PROPERTY
@given(prompt=prompts, aspect_ratio=aspect_ratios, count=counts, seed=seeds)
def test_options_are_a_clear_refusal_or_accepted(
    prompt: str, aspect_ratio: str | None, count: int | None, seed: int | None
) -> None:
    options = ImagineOptions(prompt=prompt, aspect_ratio=aspect_ratio, count=count, seed=seed)
    out_of_contract = (
        not prompt.strip()
        or len(prompt) > PROMPT_MAX
        or (aspect_ratio is not None and aspect_ratio not in ASPECT_RATIOS)
        or (count is not None and not 1 <= count <= 4)
        or (seed is not None and seed < 0)
    )
    try:
        options.check()
    except InputRejected as exc:
        assert exc.message.strip(), "a refusal must say why"
        assert len(exc.message) <= 500
        assert not plainly_valid(prompt) or out_of_contract, exc.message
        return
    assert not out_of_contract


SCHEMAS: dict[str, dict[str, Any] | None] = {
    "flux-schnell": FLUX_SCHNELL_OPENAPI_SCHEMA,
    "flux-schnell-lora": FLUX_SCHNELL_LORA_OPENAPI_SCHEMA,
    "no schema": None,
}
LOOSE_VALUES = st.one_of(
    st.sampled_from(["5", "-1", "0", "4", "1e3", "nan", "inf", "-inf", "true", "no", "[1]", "{}", "null", "", " 7 "]),
    st.sampled_from(["webp", "png", "1", "0.25", "16:9", "٣", "1_000", "9" * 5000, "0x10", "1.5"]),
    st.text(max_size=10),
)
extra_keys = st.one_of(
    st.sampled_from(
        [
            "num_outputs",
            "num_inference_steps",
            "seed",
            "output_format",
            "output_quality",
            "megapixels",
            "go_fast",
            "disable_safety_checker",
            "aspect_ratio",
            "lora_scale",
            "width",
            "height",
            "hf_lora",
            "prompt",
        ]
    ),
    st.text(max_size=8),
)


@PROPERTY
@given(
    schema_name=st.sampled_from(sorted(SCHEMAS)),
    prompt=prompts,
    aspect_ratio=aspect_ratios,
    count=counts,
    seed=seeds,
    extra=st.dictionaries(extra_keys, LOOSE_VALUES, max_size=4),
)
def test_planned_inputs_are_refused_here_or_accepted_by_the_model(
    schema_name: str,
    prompt: str,
    aspect_ratio: str | None,
    count: int | None,
    seed: int | None,
    extra: dict[str, str],
) -> None:
    """What the bot sends, the model's own validation accepts: a bad value is refused before the API."""
    document = SCHEMAS[schema_name]
    schema = InputSchema.from_openapi(document) if document is not None else None
    options = ImagineOptions(prompt=prompt, aspect_ratio=aspect_ratio, count=count, seed=seed, extra=extra)
    try:
        planned = plan_inputs(options, schema)
    except InputRejected as exc:
        assert exc.message.strip()
        return
    assert planned.inputs["prompt"] == prompt
    assert 1 <= planned.images_expected <= 4 or "num_outputs" in extra
    if document is not None:
        assert validate_input(document, planned.inputs) == [], planned.inputs


# --------------------------------------------------------------------------- model references


model_texts = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from([*NASTY, "a", "B", "0", "/", ":", ".", "-", "_", " "]), max_size=20).map("".join),
    st.builds(
        "{}/{}:{}".format,
        st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=10),
        st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=10),
        st.text(string.hexdigits, max_size=64),
    ),
)


@PROPERTY
@given(text=model_texts)
@example("@everyone/x")
@example("owner/name:<@&1>")
@example("a/b\n")
@example("a/b:")
def test_model_references_parse_or_are_refused_clearly(text: str) -> None:
    try:
        ref = ModelRef.parse(text)
    except InvalidModelRef as exc:
        assert isinstance(exc, ImagineError) and exc.message
        assert len(exc.message) <= 300, "the refusal must fit an ephemeral answer"
        return
    shown = str(ref)
    assert ModelRef.parse(shown) == ref
    # What is shown in code spans, refusals and embeds can neither ping nor break out of Markdown.
    assert not set(shown) & set("@<>`*|~#\n\r\x00 "), shown


# --------------------------------------------------------------------------- settings

SETTING_NAMES = (
    "REPLICATE_API_TOKEN",
    "DISCORD_TOKEN",
    "IMAGINE_DEFAULT_MODEL",
    "IMAGINE_MODELS",
    "DATABASE_URL",
    "IMAGINE_SYNC_GUILD",
    "IMAGINE_MAX_RUNNING",
    "IMAGINE_MAX_RUNNING_PER_SERVER",
    "IMAGINE_JOB_TIMEOUT",
    "LOG_LEVEL",
)
URL_SETTINGS = ("REPLICATE_BASE_URL", "DISCORD_API_BASE", "DISCORD_GATEWAY_URL")
SETTING_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "0",
            "-1",
            "1e309",
            "nan",
            "inf",
            "1_0",
            "٣",
            "9" * 5000,
            "debug",
            "ß",
            "sqlite:///",
            "sqlite:////tmp/x.db",
            "postgres://x",
            "a/b,,c/d:1,@everyone",
            " ",
        ]
    ),
    st.lists(fragments, max_size=5).map("".join),
)
TOKEN = "r8_SECRETsecretSECRET1234"


def check_settings(env: dict[str, str]) -> None:
    try:
        loaded = load_settings(env)
    except SettingsError as exc:
        assert exc.problems
        names = (*SETTING_NAMES, *URL_SETTINGS)
        for line in exc.problems:
            assert line.split(":", 1)[0] in names, line
            assert TOKEN not in line and "\n" not in line.strip(), line
        return
    assert isinstance(loaded.replicate_api_token, Secret)
    assert TOKEN not in repr(loaded)
    assert loaded.max_running >= 1 and loaded.max_running_per_server >= 1
    assert math.isfinite(loaded.job_timeout) and loaded.job_timeout > 0


@PROPERTY
@given(env=st.dictionaries(st.sampled_from(SETTING_NAMES), SETTING_VALUES, max_size=6))
def test_settings_load_or_name_every_problem(env: dict[str, str]) -> None:
    check_settings({"REPLICATE_API_TOKEN": TOKEN, **env} if "REPLICATE_API_TOKEN" not in env else env)


@PROPERTY
@given(name=st.sampled_from(URL_SETTINGS), value=st.sampled_from(["http://[", "https://[::1/x", "ws://[oops]x"]))
def test_url_settings_load_or_name_the_problem(name: str, value: str) -> None:
    check_settings({"REPLICATE_API_TOKEN": TOKEN, name: value})


@PROPERTY
@given(
    name=st.sampled_from(URL_SETTINGS),
    value=st.one_of(
        st.text(alphabet=st.characters(blacklist_characters="[]"), max_size=30),
        st.sampled_from(["ftp://x", "http://", "https://h/replicate/", "ws://127.0.0.1:1/gw"]),
    ),
)
def test_url_settings_without_brackets_load_or_name_the_problem(name: str, value: str) -> None:
    check_settings({"REPLICATE_API_TOKEN": TOKEN, name: value})


# --------------------------------------------------------------------------- what the bot renders

MODEL = ModelRef("black-forest-labs", "flux-schnell")


@PROPERTY
@given(
    prompt=prompts.filter(lambda p: bool(p)),
    state=st.sampled_from(list(JobState)),
    # Blank texts are test_a_blank_api_error_still_ends_the_job's business.
    error=st.one_of(st.none(), prompts.filter(str.strip)),
    notes=st.lists(prompts.filter(str.strip), max_size=3),
    position=st.one_of(st.none(), st.integers(0, 10**6)),
    fraction=st.one_of(st.none(), st.floats(-1, 2, allow_nan=False)),
    seed=st.one_of(st.none(), st.integers(0, 2**64)),
    seconds=st.one_of(st.none(), st.floats(0, 1e9, allow_nan=False)),
)
def test_every_view_renders_within_discords_limits(
    prompt: str,
    state: JobState,
    error: str | None,
    notes: list[str],
    position: int | None,
    fraction: float | None,
    seed: int | None,
    seconds: float | None,
) -> None:
    request = JobRequest(model=MODEL, options=ImagineOptions(prompt), inputs={"prompt": prompt}, requester_id=42)
    view = JobView(
        "0123456789ab",
        request,
        state,
        queue_position=position,
        progress=Progress(fraction, 1, 4) if fraction is not None else None,
        error=error,
        notes=tuple(notes),
        seed=seed,
        predict_time=seconds,
        elapsed=seconds,
        images=(ImageFile("x.png", b"\x89PNG", "image/png"),) if state is JobState.SUCCEEDED else (),
        canceled_by=7 if state is JobState.CANCELED else None,
    )
    embed = render_embed(view)
    assert len(embed.description or "") <= 4096
    assert len(embed.fields) <= 25
    for item in embed.fields:
        assert 0 < len(str(item.name)) <= 256 and len(str(item.value).strip()) > 0 and len(str(item.value)) <= 1024
    assert len(embed.footer.text or "") <= 2048 and len(embed.author.name or "") <= 256
    assert len(embed) <= 6000
    assert embed.to_dict()


# --------------------------------------------------------------------------- what the API sends back

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["http://x/y.png", "data:image/png;base64,AAAA", "ftp://x", "starting", "succeeded"]),
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
prediction_objects = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=12), json_values),
        "status": st.one_of(
            st.sampled_from(["starting", "processing", "succeeded", "failed", "canceled", "aborted", "weird"]),
            json_values,
        ),
        "output": json_values,
        "error": json_values,
        "logs": st.one_of(prompts, json_values, st.just(" 75%|███████▌ | 3/4 [00:00<00:00, 15.38it/s]\nseed: 9")),
        "metrics": st.one_of(json_values, st.fixed_dictionaries({"predict_time": json_leaves})),
        "input": st.one_of(json_values, st.fixed_dictionaries({"seed": json_leaves})),
        "data_removed": json_values,
    },
)


@PROPERTY
@given(data=st.one_of(prediction_objects, json_values))
def test_any_prediction_object_is_read_or_refused_as_a_server_error(data: Any) -> None:
    try:
        prediction = Prediction.from_json(data)
    except ServerError as exc:
        assert exc.transient and exc.message
        return
    assert isinstance(prediction.output_urls, list)
    assert all(
        isinstance(url, str) and url.startswith(("http://", "https://", "data:")) for url in prediction.output_urls
    )
    assert prediction.progress is None or 0.0 <= prediction.progress.fraction <= 1.0
    assert prediction.seed is None or isinstance(prediction.seed, int)
    assert prediction.predict_time is None or isinstance(prediction.predict_time, float)
    assert isinstance(prediction.terminal, bool)


tqdm_lines = st.builds(
    " {}%|{}| {}/{} [{}<{}, {}{}]".format,
    st.integers(0, 120),
    st.text("█▌ ", max_size=10),
    st.integers(0, 50),
    st.integers(0, 50),
    st.sampled_from(["00:00", "?", "99:59"]),
    st.sampled_from(["00:00", "?", "01:02"]),
    st.one_of(st.from_regex(r"[0-9.]{1,6}", fullmatch=True), st.sampled_from(["?", "1.50", "0", "0.0"])),
    st.sampled_from(["it/s", "s/it", "?it/s"]),
)


@PROPERTY
@given(logs=st.lists(st.one_of(tqdm_lines, st.text(max_size=30)), max_size=4).map("\n".join))
@example(logs=" 50%|█████     | 2/4 [00:00<00:01, 1.2.3it/s]")
def test_any_model_log_gives_a_progress_or_none(logs: str) -> None:
    progress = Prediction.from_json({"id": "p", "status": "processing", "logs": logs}).progress
    if progress is not None:
        assert 0.0 <= progress.fraction <= 1.0
        remaining = getattr(progress, "remaining", None)
        assert remaining is None or remaining >= 0.0


def test_an_absurd_predict_time_is_ignored() -> None:
    prediction = Prediction.from_json({"id": "p", "status": "succeeded", "metrics": {"predict_time": 10**400}})
    assert prediction.predict_time is None or math.isfinite(prediction.predict_time)


# --------------------------------------------------------------------------- through Discord


def bot_messages(stack: Stack) -> list[StoredMessage]:
    return [m for m in stack.discord.messages.values() if m.author.id == stack.discord.bot_user.id]


def assert_pings_nobody(stack: Stack, *, except_users: frozenset[int] = frozenset()) -> None:
    """No version of any message the bot made pings @everyone/@here, a role, or a user not in ``except_users``."""
    messages = bot_messages(stack)
    assert messages, "nothing to check"
    for message in messages:
        for version in message.history:
            assert not version.mention_everyone, (message, version.content)
            assert version.mention_roles == (), (message, version.content)
            assert set(version.mentions) <= except_users, (message, version.content, version.mentions)
            parse = set((version.allowed_mentions or {}).get("parse") or [])
            assert not parse & {"everyone", "roles"}, version.allowed_mentions


NASTY_PROMPTS = [
    "@everyone look at this <@&123456789012345678> @here",
    "\u202e\u200fأهلاً @everyone \u2066مرحبا\u2069 <@&1>",
    "🦊" * PROMPT_MAX,
    "a" + "\u200b" * 50 + "\x00\x07\x1b[31m fox",
    # Braces are permutations: typed escaped, as a member who means them as text does (the model gets them).
    "``` <@123456789012345678> ||@everyone|| **bold** $\\{jndi:ldap://x/a\\}",
    "👨‍👩‍👧‍👦🏳️‍🌈" * 100,
]


async def test_nasty_prompts_run_as_normal_jobs_and_ping_nobody(
    make_stack: StackFactory, unhandled: UnhandledWatch
) -> None:
    stack = await make_stack()
    stack.api.set_default_scenario(Scenario(start_delay=0.0, duration=0.05))
    role = stack.guild.add_role("Artists", 0)

    typed = [prompt.replace("<@&1>", role.mention) for prompt in NASTY_PROMPTS]
    prompts = [prompt.replace("\\{", "{").replace("\\}", "}") for prompt in typed]

    async def one(number: int, prompt: str) -> None:
        member = f"nasty-{number}"
        stack.guild.add_member(member)
        final = await stack.final_message(await stack.imagine(member, prompt=typed[number]), timeout=20)
        assert "Done" in status_of(final), (prompt[:40], final.embeds)
        assert final.attachments
        shown = final.embeds[0]["description"]
        assert shown == prompt or (shown.endswith("…") and prompt.startswith(shown[:-1])), shown[:80]

    await asyncio.gather(*(one(number, prompt) for number, prompt in enumerate(prompts)))
    # The model gets the prompt exactly as typed: nothing stripped, escaped or mangled on the way.
    assert sorted(r.json["input"]["prompt"] for r in stack.api.creates) == sorted(prompts)
    assert_pings_nobody(stack)
    unhandled.check()


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"prompt": "   "}, "empty"),
        ({"prompt": "\n\t"}, "empty"),
        ({"prompt": "x" * (PROMPT_MAX + 1)}, str(PROMPT_MAX)),
        ({"prompt": "a fox", "model": "@everyone <@&123456789012345678>"}, "model"),
        ({"prompt": "a fox", "model": "owner/@here"}, "model"),
        ({"prompt": "a fox", "model": "someone/not-allowed"}, "not allowed"),
        ({"prompt": "a fox", "aspect_ratio": "@everyone"}, "aspect_ratio"),
    ],
    ids=["blank", "whitespace", "too-long", "model-pings", "model-here", "model-not-allowed", "aspect-pings"],
)
async def test_bad_options_are_refused_to_the_member_only_and_ping_nobody(
    make_stack: StackFactory, unhandled: UnhandledWatch, options: dict[str, Any], why: str
) -> None:
    stack = await make_stack()
    handle = await imagine_in(stack.discord, stack.guild, options)
    answer = await handle.wait_callback()
    assert answer.ephemeral, answer
    assert why.lower() in (answer.content or "").lower(), answer.content
    assert stack.api.creates == []
    assert_pings_nobody(stack)
    unhandled.check()


async def test_a_blocked_word_refusal_pings_nobody(make_stack: StackFactory, unhandled: UnhandledWatch) -> None:
    stack = await make_stack()
    await (await stack.admin("words add", word="@everyone")).wait_callback()
    handle = await stack.imagine(prompt="hello @everyone")
    answer = await handle.wait_callback()
    assert answer.ephemeral and "blocked" in (answer.content or "")
    assert stack.api.creates == []
    assert_pings_nobody(stack)
    unhandled.check()


async def test_a_result_posted_anew_pings_only_the_requester(
    make_stack: StackFactory, unhandled: UnhandledWatch
) -> None:
    stack = await make_stack()
    stack.api.set_default_scenario(Scenario.manual())
    handle = await stack.imagine(prompt="@everyone <@&123456789012345678> a fox")
    placeholder = await handle.wait_message()
    prediction = await stack.api.wait_for_prediction()
    await stack.discord.delete_message(placeholder)
    stack.api.finish(prediction.id)
    requester = stack.guild.member("member").id

    def reposted() -> StoredMessage | None:
        fresh = [m for m in bot_messages(stack) if m.id != placeholder.id and is_terminal(m)]
        return fresh[0] if fresh else None

    message = await stack.discord.wait_for(reposted, 20, what="the result posted anew")
    assert "Done" in status_of(message) and field_of(message, "Status")
    assert message.current.mentions == (requester,)
    assert_pings_nobody(stack, except_users=frozenset({requester}))
    unhandled.check()


async def test_a_blank_api_error_still_ends_the_job(make_stack: StackFactory, unhandled: UnhandledWatch) -> None:
    stack = await make_stack()
    stack.discord.reject_blank_embed_fields = True
    stack.api.set_default_scenario(Scenario(start_delay=0.0, duration=0.05, final_status="failed", error=" \n "))
    final = await stack.final_message(await stack.imagine(), timeout=4)
    assert "Failed" in status_of(final)
    assert (field_of(final, "What happened") or "").strip()
    unhandled.check()
