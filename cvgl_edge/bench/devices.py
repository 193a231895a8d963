"""Peak figures of devices we estimate for but may not have: the roofline's two ceilings.

Every figure is a vendor peak for the GPU (dense, i.e. without 2:4 structured sparsity;
where a vendor quotes only sparse TOPS the dense figure is half of it), never a measurement.
Jetson rows count the integrated GPU only (not the DLAs, whose TOPS are in the module's
headline figure). ``fp16_tflops`` is the dense FP16 tensor-core rate with FP32 accumulation
where the vendor gives both (GeForce parts run FP16-accumulate at twice that rate; noted).
Orin Nano/NX figures are for the original (JetPack 5/6.0) clocks; the "Super" clocks of
JetPack 6.1+ (MAXN_SUPER) are separate rows.

Sources: the vendor documents named in each row's ``source``; the table is also in
docs/benchmarks.md ("Roofline estimates: device peaks").
"""

from __future__ import annotations

from typing import TypedDict


class Device(TypedDict):
    name: str
    kind: str  # "jetson" | "gpu"
    fp32_tflops: float
    fp16_tflops: float  # dense tensor-core FP16
    int8_tops: float  # dense tensor-core INT8
    mem_bandwidth_gbs: float
    source: str


DEVICES: dict[str, Device] = {
    "orin-nano": Device(
        name="Jetson Orin Nano 8GB (625 MHz GPU, JetPack 5/6.0 clocks)", kind="jetson",
        fp32_tflops=1.28, fp16_tflops=10.0, int8_tops=20.0, mem_bandwidth_gbs=68.0,
        source="NVIDIA Jetson Orin Nano Series data sheet: 40 sparse / 20 dense INT8 TOPS, 1024 CUDA "
               "cores at 625 MHz (FP32 = 1024 x 2 x 0.625 GHz), 128-bit LPDDR5 68 GB/s; dense FP16 = "
               "INT8 / 2 (DESIGN.md section 7: ~10 TFLOPS)",
    ),
    "orin-nano-super": Device(
        name="Jetson Orin Nano 8GB Super (1020 MHz GPU, JetPack 6.1+ MAXN_SUPER)", kind="jetson",
        fp32_tflops=2.09, fp16_tflops=16.75, int8_tops=33.5, mem_bandwidth_gbs=102.0,
        source="NVIDIA Jetson Orin Nano Super developer kit (Dec 2024): 67 sparse INT8 TOPS, GPU "
               "1020 MHz, 102 GB/s; dense = sparse / 2; FP16 = INT8 / 2 (DESIGN.md section 7: ~17)",
    ),
    "orin-nx": Device(
        name="Jetson Orin NX 16GB (918 MHz GPU, JetPack 5/6.0 clocks)", kind="jetson",
        fp32_tflops=1.88, fp16_tflops=15.0, int8_tops=30.0, mem_bandwidth_gbs=102.4,
        source="NVIDIA Jetson Orin NX Series data sheet: 100 sparse INT8 TOPS module (GPU ~60 sparse "
               "+ 2 DLAs), GPU 1024 CUDA cores / 32 tensor cores at 918 MHz, 102.4 GB/s LPDDR5; GPU "
               "dense INT8 ~30 TOPS, FP16 ~15 TFLOPS (DESIGN.md section 7: 15-19)",
    ),
    "orin-nx-super": Device(
        name="Jetson Orin NX 16GB Super (1173 MHz GPU, JetPack 6.2 MAXN_SUPER)", kind="jetson",
        fp32_tflops=2.40, fp16_tflops=19.2, int8_tops=38.4, mem_bandwidth_gbs=102.4,
        source="NVIDIA JetPack 6.2 Super mode: Orin NX 16GB 157 sparse INT8 TOPS module, GPU 1173 MHz; "
               "GPU figures = orin-nx x 1173/918; memory unchanged at 102.4 GB/s",
    ),
    "agx-orin": Device(
        name="Jetson AGX Orin 64GB (1.3 GHz GPU, MAXN)", kind="jetson",
        fp32_tflops=5.3, fp16_tflops=42.5, int8_tops=85.0, mem_bandwidth_gbs=204.8,
        source="NVIDIA Jetson AGX Orin Series Technical Brief v1.2: GPU 2048 CUDA cores (5.3 FP32 "
               "TFLOPS), 64 tensor cores, 170 sparse INT8 TOPS (dense 85), 256-bit LPDDR5 204.8 GB/s; "
               "dense FP16 = INT8 / 2 (DESIGN.md section 7: 42)",
    ),
    "rtx-3060-laptop": Device(
        name="GeForce RTX 3060 Laptop GPU (30 SMs, 1703 MHz max boost)", kind="gpu",
        fp32_tflops=13.1, fp16_tflops=26.2, int8_tops=104.6, mem_bandwidth_gbs=336.0,
        source="NVIDIA RTX 3060 Laptop GPU spec: 3840 CUDA cores, boost 1283-1703 MHz (OEM TGP), "
               "6 GB GDDR6 192-bit 14 Gbps = 336 GB/s; tensor rates from the GA10x per-SM rates of the "
               "NVIDIA Ampere GA102 whitepaper at 1703 MHz (FP16 52.3 with FP16 accumulate, 26.2 "
               "with FP32 accumulate; INT8 104.6 dense). The laptop in LRFR had an unknown TGP",
    ),
    "rtx-4090": Device(
        name="GeForce RTX 4090", kind="gpu",
        fp32_tflops=82.6, fp16_tflops=165.2, int8_tops=660.6, mem_bandwidth_gbs=1008.0,
        source="NVIDIA Ada Lovelace architecture whitepaper, RTX 4090: FP32 82.6 TFLOPS; FP16 tensor "
               "165.2 dense with FP32 accumulate (330.3 with FP16 accumulate); INT8 660.6 dense TOPS; "
               "24 GB GDDR6X 384-bit 21 Gbps = 1008 GB/s",
    ),
    "h100": Device(
        name="H100 SXM5 80GB", kind="gpu",
        fp32_tflops=66.9, fp16_tflops=989.4, int8_tops=1978.9, mem_bandwidth_gbs=3350.0,
        source="NVIDIA H100 Tensor Core GPU datasheet, SXM column: FP16 tensor 1979 TFLOPS and INT8 "
               "3958 TOPS with sparsity (dense = half), FP32 67 TFLOPS, HBM3 3.35 TB/s. The PCIe card "
               "is lower (756 FP16 / 1513 INT8 dense, 2.0 TB/s): see h100-pcie",
    ),
    "h100-pcie": Device(
        name="H100 PCIe 80GB", kind="gpu",
        fp32_tflops=51.2, fp16_tflops=756.5, int8_tops=1513.0, mem_bandwidth_gbs=2000.0,
        source="NVIDIA H100 Tensor Core GPU datasheet, PCIe column: FP16 1513 / INT8 3026 with "
               "sparsity (dense = half), FP32 51 TFLOPS, HBM2e 2.0 TB/s",
    ),
    "h200": Device(
        name="H200 SXM 141GB", kind="gpu",
        fp32_tflops=66.9, fp16_tflops=989.4, int8_tops=1978.9, mem_bandwidth_gbs=4800.0,
        source="NVIDIA H200 Tensor Core GPU datasheet, SXM column: same compute as H100 SXM "
               "(FP16 1979 / INT8 3958 with sparsity), HBM3e 4.8 TB/s",
    ),
}

#: substrings of torch.cuda.get_device_name() -> DEVICES key (for --peak-gbs defaults)
GPU_NAME_HINTS: tuple[tuple[str, str], ...] = (
    ("H200", "h200"),
    ("H100 PCIe", "h100-pcie"),
    ("H100", "h100"),
    ("RTX 4090", "rtx-4090"),
    ("RTX 3060 Laptop", "rtx-3060-laptop"),
)  # no Jetson hint: every Orin module reports the same name ("Orin"), pick it by key


def device_for_gpu_name(gpu_name: str) -> str | None:
    """The DEVICES key whose part matches a CUDA device name, or None."""
    for hint, key in GPU_NAME_HINTS:
        if hint.lower() in gpu_name.lower():
            return key
    return None


def peak_for_precision(device: Device, precision: str) -> float:
    """Peak compute in FLOP/s (or OP/s) for fp32 / fp16 / int8."""
    table = {"fp32": device["fp32_tflops"], "fp16": device["fp16_tflops"], "int8": device["int8_tops"]}
    return table[precision] * 1e12
