"Remove papermill's injected-parameters cells: `make book` re-runs the experiment notebooks in place with -p quick True."
import json
import sys

for path in sys.argv[1:]:
    nb = json.load(open(path, encoding="utf-8"))
    nb["cells"] = [c for c in nb["cells"] if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(nb, f, indent=1, ensure_ascii=False)
        f.write("\n")
