#!/usr/bin/env python3
"""Rebuild `instances.snapshot.json`, the AWS component's embedded offer
snapshot, in the ec2instances.info `instances.json` format.

Inputs (see README.md beside this script for versions and dates):
- an unpacked apache-libcloud wheel: `libcloud/data/pricing.json`
  (`compute.ec2_linux`: Linux on-demand USD/h per type and region, and
  `updated`, the scrape time) and `libcloud/compute/constants/ec2_instance_types.py`
  (vCPU, memory, storage, processor, GPU count per type);
- GPU models and memory: ec2instances.info's own table (GPU_DATA below, the
  facts of `scraper/aws/ec2/gpu_data.go`), so the strings are the ones the
  live catalogue carries.

Usage: python3 build_snapshot.py <unpacked-libcloud-dir> > instances.snapshot.json
"""

import json
import re
import sys

# instance type -> (GPU model, GPU count, total GPU memory GB), as in
# ec2instances.info scraper/aws/ec2/gpu_data.go (vantage-sh/ec2instances.info
# @ 0be03e53ddb33d3a9e526a4131c1f4ec6e0db91c).
GPU_DATA = {}
def gpus(model, count, memory, *types):
    for t in types:
        GPU_DATA[t] = (model, count, memory)

gpus("NVIDIA GRID K520", 1, 4, "g2.2xlarge")
gpus("NVIDIA GRID K520", 4, 16, "g2.8xlarge")
gpus("NVIDIA Tesla M60", 1, 8, "g3s.xlarge", "g3.4xlarge")
gpus("NVIDIA Tesla M60", 2, 16, "g3.8xlarge")
gpus("NVIDIA Tesla M60", 4, 32, "g3.16xlarge")
gpus("NVIDIA T4 Tensor Core", 1, 16, "g4dn.xlarge", "g4dn.2xlarge", "g4dn.4xlarge",
     "g4dn.8xlarge", "g4dn.16xlarge")
gpus("NVIDIA T4 Tensor Core", 4, 64, "g4dn.12xlarge")
gpus("NVIDIA T4 Tensor Core", 8, 128, "g4dn.metal")
gpus("NVIDIA Tesla K80", 1, 12, "p2.xlarge")
gpus("NVIDIA Tesla K80", 4, 96, "p2.8xlarge")
gpus("NVIDIA Tesla K80", 8, 192, "p2.16xlarge")
gpus("NVIDIA Tesla V100", 1, 16, "p3.2xlarge")
gpus("NVIDIA Tesla V100", 4, 64, "p3.8xlarge")
gpus("NVIDIA Tesla V100", 8, 128, "p3.16xlarge")
gpus("NVIDIA Tesla V100", 8, 256, "p3dn.24xlarge")
gpus("NVIDIA A10G", 1, 24, "g5.xlarge", "g5.2xlarge", "g5.4xlarge", "g5.8xlarge", "g5.16xlarge")
gpus("NVIDIA A10G", 4, 96, "g5.12xlarge", "g5.24xlarge")
gpus("NVIDIA A10G", 8, 192, "g5.48xlarge")
gpus("NVIDIA L4", 1, 24, "g6.xlarge", "g6.2xlarge", "g6.4xlarge", "g6.8xlarge", "g6.16xlarge",
     "gr6.4xlarge", "gr6.8xlarge")
gpus("NVIDIA L4", 4, 96, "g6.12xlarge", "g6.24xlarge")
gpus("NVIDIA L4", 8, 192, "g6.48xlarge")
gpus("NVIDIA L40S", 1, 48, "g6e.xlarge", "g6e.2xlarge", "g6e.4xlarge", "g6e.8xlarge",
     "g6e.16xlarge")
gpus("NVIDIA L40S", 4, 192, "g6e.12xlarge", "g6e.24xlarge")
gpus("NVIDIA L40S", 8, 384, "g6e.48xlarge")
gpus("NVIDIA A100", 8, 320, "p4d.24xlarge")
gpus("NVIDIA A100", 8, 640, "p4de.24xlarge")
gpus("NVIDIA H200", 8, 1128, "p5e.48xlarge", "p5en.48xlarge")
gpus("NVIDIA T4G Tensor Core", 1, 16, "g5g.xlarge", "g5g.2xlarge", "g5g.4xlarge", "g5g.8xlarge")
gpus("NVIDIA T4G Tensor Core", 2, 32, "g5g.16xlarge", "g5g.metal")
gpus("AMD Radeon Pro V520", 1, 8, "g4ad.xlarge", "g4ad.2xlarge", "g4ad.4xlarge")
gpus("AMD Radeon Pro V520", 2, 16, "g4ad.8xlarge")
gpus("AMD Radeon Pro V520", 4, 32, "g4ad.16xlarge")
gpus("AWS Inferentia", 1, 32, "trn1.2xlarge")
gpus("AWS Inferentia", 16, 512, "trn1.32xlarge", "trn1n.32xlarge")
gpus("AWS Trainium2", 16, 96, "trn2.48xlarge")
gpus("AWS Inferentia", 1, 8, "inf1.xlarge", "inf1.2xlarge")
gpus("AWS Inferentia", 4, 32, "inf1.6xlarge")
gpus("AWS Inferentia", 16, 128, "inf1.24xlarge")
gpus("AWS Inferentia2", 1, 32, "inf2.xlarge", "inf2.8xlarge")
gpus("AWS Inferentia2", 6, 192, "inf2.24xlarge")
gpus("AWS Inferentia2", 12, 384, "inf2.48xlarge")
gpus("NVIDIA H100", 1, 80, "p5.4xlarge")
gpus("NVIDIA H100", 8, 640, "p5.48xlarge")
gpus("Qualcomm AI 100 Accelerators", 8, 128, "dl2q.24xlarge")


def number(text):
    m = re.match(r"\s*([0-9]+(?:\.[0-9]+)?)", text or "")
    return float(m.group(1)) if m else None


def storage(text):
    """'2 x 1900 NVMe SSD' / '1 x 250 GB NVMe SSD' / '900 GB NVMe SSD' -> {devices, size}."""
    m = re.match(r"\s*(\d+)\s*[xX]\s*(\d+)", text or "")
    if m:
        return {"devices": int(m.group(1)), "size": int(m.group(2)), "size_unit": "GB"}
    m = re.match(r"\s*(\d+)\s*GB", text or "")
    if m:
        return {"devices": 1, "size": int(m.group(1)), "size_unit": "GB"}
    return None


def as_int(x):
    return int(x) if x is not None and float(x).is_integer() else x


def main(root):
    sys.path.insert(0, root)
    from libcloud.compute.constants.ec2_instance_types import INSTANCE_TYPES

    with open(f"{root}/libcloud/data/pricing.json") as f:
        pricing = json.load(f)
    linux = pricing["compute"]["ec2_linux"]
    out = []
    for name in sorted(linux):
        spec = INSTANCE_TYPES.get(name)
        if spec is None:
            continue  # no specs (libcloud lists a few bare family names)
        extra = spec["extra"]
        family = name.split(".")[0]
        if extra.get("currentGeneration") != "Yes" or family.startswith("mac"):
            continue  # previous generations; macOS-only dedicated hosts
        prices = {r: p for r, p in sorted(linux[name].items()) if p and p > 0}
        if not prices:
            continue
        vcpu, memory = number(extra.get("vcpu")), number(extra.get("memory"))
        if not vcpu or not memory:
            continue
        processor = extra.get("physicalProcessor", "")
        arch = "arm64" if "Graviton" in processor else "x86_64"
        model, count, gpu_memory = GPU_DATA.get(name, (None, 0, 0))
        if not model and extra.get("gpu"):
            count = as_int(number(extra["gpu"]))
        out.append({
            "instance_type": name,
            "family": extra.get("instanceFamily"),
            "vCPU": as_int(vcpu),
            "memory": as_int(memory),
            "GPU": count,
            "GPU_model": model,
            "GPU_memory": gpu_memory,
            "arch": [arch],
            "storage": storage(extra.get("storage")),
            "pricing": {r: {"linux": {"ondemand": repr(p)}} for r, p in prices.items()},
        })
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    print(f"{len(out)} types, {sum(len(t['pricing']) for t in out)} offers, "
          f"updated {pricing['updated']}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
