"""Workers load the DP libraries before the first job, and a job loads its library before its time limit starts."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lomas.settings")
import django
django.setup()
from queries.libraries import ADAPTERS, get_adapter, warm_up_all
lazy = {module for library in ADAPTERS for module in get_adapter(library).library_modules}
before = lazy & set(sys.modules)
warm_up_all()
print(json.dumps({"loaded": sorted(lazy - before), "missing": sorted(lazy - set(sys.modules))}))
"""


def test_warm_up_loads_every_library_module_the_adapters_import_lazily():
    # given a fresh process (the test process has loaded libraries already)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True,
        env={"DJANGO_DEBUG": "true", "PATH": "/usr/bin:/bin", "HOME": str(ROOT)},
    )  # fmt: skip
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    # then warm-up loaded the synthesizers (networkx through mbi) and left nothing out
    assert "snsynth.aim" in modules["loaded"]
    assert modules["missing"] == []
