"""Tempest, the OpenStack QA suite, against the embedded cloud.

An outside check of the embedded cloud's realism (issue 8), and a baseline
for benchmarks.  The callable pieces:

* :func:`conformance.tempest.venv.ensure_tempest`: Tempest's own venv;
* :func:`conformance.tempest.config.write_conf`: ``tempest.conf`` for a
  cloud running in a workdir;
* :func:`conformance.tempest.runner.run_modules`: run test modules, read the
  results back (subunit, :mod:`conformance.tempest.subunit`);
* :mod:`conformance.tempest.results`: per-module summary and table.

``python -m conformance.tempest run`` does all of it (``tox -e tempest``).
"""
