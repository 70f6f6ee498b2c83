"""The shipped external-control example, built from lifelines' GBSG2 data: the two files
of ``protocols/rare_disease_external_control.yaml`` (:func:`gbsg2_external_control_example`,
written by ``insilico example-data``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["gbsg2_external_control_example"]

#: Days per month, to express the GBSG2 follow-up in months.
DAYS_PER_MONTH = 30.4375
EXAMPLE_TRIAL_SIZE = 60


def gbsg2_external_control_example() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The shipped rare-disease style example, built from lifelines' GBSG2 data.

    The German Breast Cancer Study Group 2 trial (686 patients; Schumacher et al. 1994)
    compared hormonal therapy (tamoxifen) with none. Here:

    * the **single-arm trial** is 60 of the patients given hormonal therapy, aged 35 to 75,
      chosen with a covariate shift towards more positive lymph nodes and older age (a
      "higher-risk" trial): patient ``i`` is kept with probability proportional to
      ``pnodes^0.3 * exp(0.02 (age - 53))``, by weighted sampling without replacement
      (Efraimidis & Spirakis 2006) driven by SHA-256 hashes of the row numbers, so the
      selection is the same on every platform and version; recurrence-free survival in
      months;
    * the **external source** is every patient not given hormonal therapy (440), written as
      a registry would: other column names, tumour size in centimetres, grade as 1/2/3,
      menopausal status as pre/post, follow-up in days.

    Returns
    -------
    trial, external : DataFrame
    """
    import hashlib

    from lifelines.datasets import load_gbsg2

    data = load_gbsg2().reset_index(drop=True)
    uniform = np.array(
        [
            int(hashlib.sha256(f"gbsg2-single-arm-{i}".encode()).hexdigest()[:13], 16) / 16**13
            for i in range(len(data))
        ]
    )
    treated = data[(data["horTh"] == "yes") & data["age"].between(35, 75)]
    weight = treated["pnodes"] ** 0.3 * np.exp(0.02 * (treated["age"] - 53))
    keys = np.log(uniform[treated.index]) / weight.to_numpy()
    order = np.argsort(-keys, kind="stable")
    chosen = np.sort(treated.index.to_numpy()[order][:EXAMPLE_TRIAL_SIZE])
    selected = data.loc[chosen]
    trial = pd.DataFrame(
        {
            "patient_id": [f"T{i + 1:03d}" for i in range(len(selected))],
            "age": selected["age"].to_numpy(),
            "menostat": selected["menostat"].to_numpy(),
            "tsize": selected["tsize"].to_numpy(),
            "tgrade": selected["tgrade"].to_numpy(),
            "pnodes": selected["pnodes"].to_numpy(),
            "progrec": selected["progrec"].to_numpy(),
            "estrec": selected["estrec"].to_numpy(),
            "rfs_months": np.round(selected["time"].to_numpy() / DAYS_PER_MONTH, 3),
            "rfs_event": selected["cens"].to_numpy(),
        }
    )
    untreated = data[data["horTh"] == "no"]
    external = pd.DataFrame(
        {
            "registry_id": [f"R{i + 1:04d}" for i in range(len(untreated))],
            "age_years": untreated["age"].to_numpy(),
            "menopause": untreated["menostat"].map({"Pre": "pre", "Post": "post"}).to_numpy(),
            "tumour_size_cm": untreated["tsize"].to_numpy() / 10,
            "grade": untreated["tgrade"].map({"I": 1, "II": 2, "III": 3}).to_numpy(),
            "positive_nodes": untreated["pnodes"].to_numpy(),
            "pgr_fmol": untreated["progrec"].to_numpy(),
            "er_fmol": untreated["estrec"].to_numpy(),
            "rfs_days": untreated["time"].to_numpy(),
            "recurrence": untreated["cens"].to_numpy(),
        }
    )
    return trial, external
