"""Every built-in torchtune config, validated with its own recipe: no false alarm allowed.

    python benchmarks/builtin_configs.py [--only TEXT] [--json FILE]

Each of torchtune's recipe configs (``tune ls``) is validated as ``validate FILE --recipe NAME``
would: torchtune's own check, the static checks, and the recipe executed (setup and one
optimizer step, at a tiny size and at the real size), two processes for a distributed recipe.
Prints one line per config and a count per status; a config that needs a package not installed
here (bitsandbytes, torchvision, lm_eval) is unverified, any other finding is a false alarm.
Needs torch and torchtune; downloads nothing.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="configs or recipes whose name holds this")
    parser.add_argument("--json", type=Path, help="also write the results here")
    options = parser.parse_args()
    import torchtune
    from torchtune._recipe_registry import get_all_recipes

    from torchtune_config_writer.validation.validating import Target, validate_targets

    root = Path(torchtune.__file__).parent.parent / "recipes" / "configs"
    targets, names = [], {}
    for recipe in get_all_recipes():
        for config in recipe.configs:
            path = root / config.file_path
            if not path.exists():  # the registry names a few files torchtune does not ship
                print(f"{'missing':10} {recipe.name:40} {config.name}")
                continue
            if options.only in recipe.name or options.only in config.name:
                targets.append(Target(path, None, recipe.name))
                names[path] = (recipe.name, config.name)
    start = time.perf_counter()
    result = validate_targets(targets)
    seconds = time.perf_counter() - start
    rows = []
    for item in result.configs:
        recipe, config = names[item.config]
        said = "; ".join(
            f"{f.severity} {f.keypath} [{f.check}]: {f.message}" for f in item.findings
        )
        print(f"{item.status:10} {recipe:40} {config:45} {said[:300]}")
        rows.append({"recipe": recipe, "config": config, "status": str(item.status), "said": said})
    counts = collections.Counter(str(item.status) for item in result.configs)
    print(f"{len(result.configs)} configs in {seconds:.0f} s: {dict(counts)}")
    if options.json:
        options.json.write_text(json.dumps({"seconds": seconds, "configs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
