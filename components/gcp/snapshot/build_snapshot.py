#!/usr/bin/env python3
"""Builds vms.snapshot.csv, the gcp component's embedded price snapshot, from the
recorded data in tests/standins/gcp/data (see README.md next to this file).

Run from anywhere: python3 components/gcp/snapshot/build_snapshot.py
"""

import csv
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "..", "tests", "standins", "gcp", "data")
OUT = os.path.join(HERE, "vms.snapshot.csv")
HEADER = ["InstanceType", "vCPUs", "MemoryGiB", "AcceleratorName", "AcceleratorCount", "GpuInfo",
          "Region", "AvailabilityZone", "Price", "SpotPrice"]
# SKU description phrase -> machine family (the families the recorded SKUs price).
FAMILIES = {"E2 Instance": "e2", "N1 Predefined Instance": "n1", "N2 Instance": "n2",
            "N2D AMD Instance": "n2d", "Compute optimized": "c2"}
# Google bills the E2 shared-core types a fraction of a vCPU.
BILLABLE = {"e2-micro": 0.25, "e2-small": 0.5, "e2-medium": 1.0}


def sku_rates():
    rates = {}  # (family, "core"|"ram", region, spot) -> USD
    for n in (1, 2, 3):
        with open(os.path.join(DATA, f"skus.compute_engine.page{n}.constructed.json")) as f:
            for sku in json.load(f)["skus"]:
                desc = sku["description"]
                spot = desc.startswith("Preemptible ")
                what = desc.removeprefix("Preemptible ").split(" running in ")[0]
                for phrase, family in FAMILIES.items():
                    if what in (f"{phrase} Core", f"{phrase} Ram"):
                        kind = "core" if what.endswith("Core") else "ram"
                        rate = sku["pricingInfo"][0]["pricingExpression"]["tieredRates"][-1]["unitPrice"]
                        usd = int(rate.get("units") or 0) + rate.get("nanos", 0) / 1e9
                        for region in sku["serviceRegions"]:
                            rates[(family, kind, region, spot)] = usd
    return rates


def main():
    rates = sku_rates()
    rows = []
    with open(os.path.join(DATA, "machinetypes_by_region.trimmed.real.csv")) as f:
        for mt in csv.DictReader(f, delimiter=";"):
            name, region = mt["NAME"], mt["ZONE"]
            family = name.split("-")[0]
            vcpus, mem = float(mt["CPUS"]), float(mt["MEMORY_GB"])
            billable = BILLABLE.get(name, vcpus)
            core, ram = rates.get((family, "core", region, False)), rates.get((family, "ram", region, False))
            if core is None or ram is None:
                continue
            price = billable * core + mem * ram
            score, sram = rates.get((family, "core", region, True)), rates.get((family, "ram", region, True))
            spot = "" if score is None or sram is None else f"{billable * score + mem * sram:.8f}"
            rows.append([name, f"{vcpus:.1f}", f"{mem:.2f}", "", "", "", region, "", f"{price:.8f}", spot])
    # The real SkyPilot rows (A2/A3 host prices, TPUs, one N1) and the A100 rows
    # priced from the real "Nvidia Tesla A100 GPU" SKU, unchanged.
    for name in ("gcp_vms_v8.sample.csv", "gcp_vms_v8.a100_rows.constructed.csv"):
        with open(os.path.join(DATA, name)) as f:
            r = csv.reader(f)
            next(r)
            rows.extend(r)
    rows.sort(key=lambda r: (r[6], r[0], r[3], r[4], r[7]))
    with open(OUT, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(rows)
    print(f"{OUT}: {len(rows)} rows")


if __name__ == "__main__":
    main()
