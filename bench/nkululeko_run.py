"""Runs one nkululeko experiment and writes its test predictions; started by bench/peers.py with
the python of nkululeko's own virtualenv (it imports nkululeko, not albsent).

    NKULULEKO_VENV/bin/python bench/nkululeko_run.py EXP.ini OUT_PREFIX

The steps are those of `python -m nkululeko.nkululeko --config EXP.ini` (nkululeko.nkululeko.doit):
load the data, split, extract features, run. Writes OUT_PREFIX.csv (file,truth,pred as label names,
in nkululeko's test order) and OUT_PREFIX.json (nkululeko's version, its own UAR of the run and,
with `[MODEL] logo`, its per-group UARs from logo_results.txt), so the bench computes every metric
itself and checks it against nkululeko's.

- Without `logo`: the test split of the INI, predicted by the model trained on its train split.
- With `[MODEL] logo` and a `fold` column: nkululeko ignores the split, trains and tests once per
  fold value (LeaveOneGroupOut over `fold`, groups in sorted order) and pools the predictions.
"""

import configparser
import json
import sys
from pathlib import Path

import nkululeko.experiment as exp
import pandas as pd
from nkululeko.constants import VERSION


def main(ini: str, out_prefix: str) -> None:
    config = configparser.ConfigParser()
    config.read(ini)
    expr = exp.Experiment(config)
    expr.set_module("nkululeko")
    expr.load_datasets()
    expr.fill_train_and_tests()
    expr.extract_feats()
    expr.init_runmanager()
    expr.run()
    model = expr.runmgr.modelrunner.model
    report = expr.runmgr.reports[-1]
    logo = config.get("MODEL", "logo", fallback=None)
    if logo:
        index, truth, pred = model.truths.index, model.truths.to_numpy(), model.preds.to_numpy()
        text = (Path(expr.util.get_path("res_dir")) / "logo_results.txt").read_text()
        groups = [float(x) for x in text.split("[", 1)[1].split("]", 1)[0].split(",")]
    else:
        index, truth, pred = model.df_test.index, report.truths_cont, report.preds_cont
        groups = None
    files = index.get_level_values("file") if isinstance(index, pd.MultiIndex) else index
    decode = expr.label_encoder.inverse_transform
    pd.DataFrame({"file": list(files), "truth": decode(truth.astype(int)),
                  "pred": decode(pred.astype(int))}).to_csv(f"{out_prefix}.csv", index=False)
    info = {"nkululeko": VERSION, "uar": float(report.result.test), "logo_results": groups}
    Path(f"{out_prefix}.json").write_text(json.dumps(info))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
