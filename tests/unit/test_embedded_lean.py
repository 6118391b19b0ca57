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


def test_policy_loaded_once_and_sqlite_unsynchronous(tmp_path: Path) -> None:
    """Rules are searched once, still follow new defaults and set_rules; sqlite is not synchronous."""
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "db.sqlite")],
                          capture_output=True, text=True, check=True, timeout=60)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["checks"] == [True, False, True]
    assert out["searches_after_3"] <= 2  # policy.yaml and policy.d, at the first check only
    assert out["new_rule"] is True
    assert out["replaced"] is False
    assert out["synchronous"] == 0

