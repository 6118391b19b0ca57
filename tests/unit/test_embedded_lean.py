"""The embedded Nova process's CPU savings keep policy and database behaviour."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

if importlib.util.find_spec("oslo_policy") is None or importlib.util.find_spec("oslo_db") is None:
    pytest.skip("needs the embedded extra (oslo.policy, oslo.db)", allow_module_level=True)

# A child process: the patches change oslo.policy and oslo.db for the whole process.
SCRIPT = textwrap.dedent("""
    import json, sys
    from oslo_config import cfg
    from oslo_db.sqlalchemy import engines
    from oslo_policy import policy
    from conformance.embedded import lean

    lean.policy_rules_loaded_once()
    lean.throwaway_sqlite()
    lean.policy_rules_loaded_once()  # twice: still one wrapper
    conf = cfg.ConfigOpts()
    conf([], project="lean-test", default_config_files=[])
    enforcer = policy.Enforcer(conf)
    enforcer.register_default(policy.RuleDefault("admin", "role:admin"))
    searches = []
    real_path = policy.Enforcer._get_policy_path
    def counted(self, path):
        searches.append(path)
        return real_path(self, path)
    policy.Enforcer._get_policy_path = counted
    admin, member = {"roles": ["admin"]}, {"roles": ["member"]}
    out = {"checks": [enforcer.enforce("admin", {}, c) for c in (admin, member, admin)]}
    out["searches_after_3"] = len(searches)
    enforcer.register_default(policy.RuleDefault("anyone", "@"))
    out["new_rule"] = enforcer.enforce("anyone", {}, member)
    enforcer.set_rules(policy.Rules.from_dict({"admin": "!"}), overwrite=True, use_conf=False)
    out["replaced"] = enforcer.enforce("admin", {}, admin)
    engine = engines.create_engine("sqlite:///" + sys.argv[1], max_retries=0)
    with engine.connect() as conn:
        out["synchronous"] = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    print(json.dumps(out))
""")


def _run(script: str, *args: str, needs: str | None = None) -> dict:
    """Run ``script`` in a fresh interpreter (patches stay out of this one); its last line's JSON."""
    if needs and importlib.util.find_spec(needs) is None:
        pytest.skip(f"needs the embedded extra ({needs})")
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          check=True, timeout=120)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_policy_loaded_once_and_sqlite_unsynchronous(tmp_path: Path) -> None:
    """Rules are searched once, still follow new defaults and set_rules; sqlite is not synchronous."""
    out = _run(SCRIPT, str(tmp_path / "db.sqlite"))
    assert out["checks"] == [True, False, True]
    assert out["searches_after_3"] <= 2  # policy.yaml and policy.d, at the first check only
    assert out["new_rule"] is True
    assert out["replaced"] is False
    assert out["synchronous"] == 0


VALIDATORS = textwrap.dedent("""
    import json
    from nova import exception
    from nova.api.validation import validators
    from conformance.embedded import lean

    lean.schema_validators_reused()
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}},
              "additionalProperties": False}
    first = validators._SchemaValidator(schema, False, True)
    same = validators._SchemaValidator(schema, False, True) is first
    other = validators._SchemaValidator(dict(schema), False, True) is first
    errors = []
    for body in ({"n": 2}, {"n": 0}, {"m": 1}):
        try:
            validators._SchemaValidator(schema, False, True).validate(body)
            errors.append(None)
        except exception.ValidationError as exc:
            errors.append(exc.format_message())
    print(json.dumps({"same": same, "other": other, "errors": errors}))
""")


def test_schema_validators_reused_with_the_same_verdicts() -> None:
    """One validator per schema object; bad bodies still fail with Nova's messages."""
    out = _run(VALIDATORS, needs="nova")
    assert out["same"] is True and out["other"] is False
    assert out["errors"][0] is None
    assert out["errors"][1:] == [
        "Invalid input for field/attribute n. Value: 0. 0 is less than the minimum of 1",
        "Additional properties are not allowed ('m' was unexpected)"]


WAKE = textwrap.dedent("""
    import json, time
    import futurist
    from conformance.embedded import fixes

    fixes.calm_idle_workers(30.0)
    executor = futurist.ThreadPoolExecutor(max_workers=3)
    done = [executor.submit(time.sleep, 0.05) for _ in range(6)]
    results = [f.result() for f in done]
    time.sleep(0.2)  # every worker idle, polling every 30 s
    started = time.monotonic()
    executor.shutdown(wait=True)
    print(json.dumps({"shutdown_s": time.monotonic() - started, "results": len(results)}))
""")


def test_idle_workers_poll_rarely_but_stop_at_once() -> None:
    """With a 30 s idle poll, an executor of idle workers still shuts down at once."""
    out = _run(WAKE, needs="futurist")
    assert out["results"] == 6
    assert out["shutdown_s"] < 5
