"""Hardware, link and grid profiles: data, with the source of every figure beside it.

Conventions
-----------
* ``peak_flops`` is the dense FP16/BF16 tensor-core peak in FLOP/s (FP32 where a device has
  no tensor cores), from the vendor datasheet. Sparsity ("2:4 sparse") figures are halved.
  Where a vendor gives only INT8 TOPS, FP16 is taken as half the dense INT8 figure (the
  ratio of every Ampere/Ada tensor core), and the derivation is written down.
* ``utilisation`` is the sustained share of that peak for small-batch inference and
  fine-tuning. It is a judgement anchored on published measurements (MLPerf Inference
  results, model-FLOP-utilisation reports); it is given to one or two significant figures
  because that is all the evidence supports.
* Powers are board/module powers in W; ``idle_w`` is the draw when powered on but idle.
* ``pue`` (power usage effectiveness) multiplies the IT energy of a data-centre site.
  Embedded devices (Jetson, phones, Raspberry Pi) get 1.0.
* Links: bandwidths are sustained per-cell (shared) rates in bit/s, RTT is the
  round-trip propagation plus scheduling delay in s, ``j_per_bit`` the marginal energy of
  moving one bit in J/bit (one figure for both directions: the mean of up and down where the
  source separates them).
* Grid: carbon intensity of consumed electricity, g CO2(e)/kWh, recent annual mean
  (2022-2023) with typical hourly extremes.

No figure here was measured for this project; each is quoted (rounded) from the named document.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NodeProfile:
    """Compute hardware of one node (one accelerator / board / device)."""

    name: str
    peak_flops: float  # FLOP/s, datasheet
    utilisation: float  # sustained share of peak, 0..1
    memory_bytes: float  # bytes of accelerator/device memory
    idle_w: float  # W when idle
    active_w: float  # W at full load (TDP / max power mode)
    source: str  # where each figure comes from
    pue: float = 1.0  # site power usage effectiveness (>= 1)

    @property
    def effective_flops(self) -> float:
        """Sustained throughput in FLOP/s (peak x utilisation)."""
        return self.peak_flops * self.utilisation


@dataclass(frozen=True)
class LinkProfile:
    """A network link type."""

    name: str
    downlink_bps: float  # bit/s towards the end device / edge
    uplink_bps: float  # bit/s towards the edge / cloud
    rtt_s: float  # round-trip time, s
    j_per_bit: float  # marginal transfer energy, J/bit (both directions unless given per direction)
    source: str
    j_per_bit_up: float | None = None  # J/bit towards the edge / cloud, where it differs
    j_per_bit_down: float | None = None  # J/bit towards the end device / edge, where it differs

    @property
    def up_j_per_bit(self) -> float:
        """Marginal energy of an uplink bit, J/bit."""
        return self.j_per_bit if self.j_per_bit_up is None else self.j_per_bit_up

    @property
    def down_j_per_bit(self) -> float:
        """Marginal energy of a downlink bit, J/bit."""
        return self.j_per_bit if self.j_per_bit_down is None else self.j_per_bit_down


@dataclass(frozen=True)
class GridProfile:
    """Carbon intensity of a region's electricity, g CO2e/kWh."""

    name: str
    mean_g_per_kwh: float  # annual mean
    min_g_per_kwh: float  # typical hourly low (sunny middays, windy nights)
    max_g_per_kwh: float  # typical hourly high (evening peak)
    source: str


GiB = 1024**3

# Utilisation anchors used below:
#  [U1] MLPerf Inference v3.x/v4.0 (mlcommons.org): an A100-SXM runs ResNet-50 offline at
#       roughly 40k samples/s x 8.2 GFLOP = ~0.3 PFLOP/s (INT8) of 624 dense INT8 TOPS, i.e.
#       ~50% at large batch; server (latency-bounded) scenarios reach less.
#  [U2] Narayanan et al., "Efficient Large-Scale Language Model Training on GPU Clusters
#       Using Megatron-LM", SC'21: 52% of A100 peak for large-batch training; small-batch
#       serving and LoRA fine-tuning typically reach well below that -> 0.35 assumed.
#  [U3] MLPerf Inference Edge v3.0: Jetson AGX Orin ResNet-50 offline ~6k samples/s
#       (GPU + 2 DLA, INT8) = ~50 TOPS of ~140 dense INT8 TOPS, ~35%; FP16 small batch
#       lower -> 0.3 assumed.
#  [U4] Ignatov et al., "AI Benchmark: All About Deep Learning on Smartphones in 2019",
#       ICCVW 2019: mobile GPU/NPU delegates reach a small share of nominal peak on small
#       CNNs -> 0.1 assumed.

NODES: dict[str, NodeProfile] = {
    p.name: p
    for p in (
        NodeProfile(
            name="nvidia_a100_sxm",
            peak_flops=312e12,  # FP16/BF16 dense tensor: NVIDIA A100 Tensor Core GPU datasheet
            utilisation=0.35,  # [U1], [U2]
            memory_bytes=80 * GiB,  # A100 80GB SXM: datasheet
            idle_w=50.0,  # ~50 W idle (nvidia-smi on DGX A100; Patel et al., "Characterizing
            #   Power Management Opportunities for LLMs in the Cloud", ASPLOS'24)
            active_w=400.0,  # max TDP 400 W: datasheet
            pue=1.10,  # hyperscale site: Google Environmental Report 2023, fleet PUE 1.10
            source=(
                "NVIDIA A100 Tensor Core GPU datasheet (312 TFLOPS FP16 dense, 80 GB, 400 W); "
                "idle ~50 W: Patel et al. ASPLOS'24; utilisation: MLPerf Inference, Narayanan "
                "et al. SC'21; PUE 1.10: Google Environmental Report 2023"
            ),
        ),
        NodeProfile(
            name="nvidia_h100_sxm",
            peak_flops=989e12,  # BF16/FP16 dense tensor (1,979 with sparsity): H100 datasheet
            utilisation=0.35,  # [U1], [U2]
            memory_bytes=80 * GiB,  # H100 SXM 80 GB HBM3: datasheet
            idle_w=70.0,  # ~70 W idle (Patel et al., ASPLOS'24, DGX H100 measurements)
            active_w=700.0,  # max TDP up to 700 W: datasheet
            pue=1.10,  # Google Environmental Report 2023
            source=(
                "NVIDIA H100 Tensor Core GPU datasheet (989 TFLOPS BF16 dense, 80 GB, 700 W); "
                "idle ~70 W: Patel et al. ASPLOS'24; PUE 1.10: Google Environmental Report 2023"
            ),
        ),
        NodeProfile(
            name="nvidia_l4",
            peak_flops=121e12,  # FP16 tensor dense (242 with sparsity): NVIDIA L4 datasheet
            utilisation=0.35,  # [U1], [U2]
            memory_bytes=24 * GiB,  # 24 GB GDDR6: datasheet
            idle_w=16.0,  # ~16 W idle, nvidia-smi reports on L4 cloud instances (approx.)
            active_w=72.0,  # 72 W max board power: datasheet
            pue=1.58,  # edge / enterprise room: Uptime Institute Global Data Center Survey 2023
            source=(
                "NVIDIA L4 Tensor Core GPU datasheet (121 TFLOPS FP16 dense, 24 GB, 72 W); "
                "idle approx.; PUE 1.58: Uptime Institute Global Data Center Survey 2023 average"
            ),
        ),
        NodeProfile(
            name="nvidia_t4",
            peak_flops=65e12,  # FP16 mixed-precision tensor: NVIDIA T4 datasheet
            utilisation=0.35,  # [U1], [U2]
            memory_bytes=16 * GiB,  # 16 GB GDDR6: datasheet
            idle_w=10.0,  # ~10 W idle, nvidia-smi on T4 instances (approx.)
            active_w=70.0,  # 70 W max board power: datasheet
            pue=1.58,  # Uptime Institute Global Data Center Survey 2023 average
            source=(
                "NVIDIA T4 Tensor Core GPU datasheet (65 TFLOPS FP16, 16 GB, 70 W); idle approx.; "
                "PUE 1.58: Uptime Institute Global Data Center Survey 2023 average"
            ),
        ),
        NodeProfile(
            name="jetson_agx_orin",
            # Jetson AGX Orin 64GB: GPU 170 INT8 sparse TOPS -> 85 dense INT8 -> 42.5 FP16 dense
            peak_flops=42.5e12,
            utilisation=0.30,  # [U3]
            memory_bytes=64 * GiB,  # 64 GB LPDDR5: Jetson AGX Orin Series Technical Brief
            idle_w=10.0,  # module idle ~10 W (approx., 15 W power mode at idle)
            active_w=60.0,  # MAXN power mode 60 W: technical brief
            source=(
                "NVIDIA Jetson AGX Orin Series Technical Brief / datasheet (275 TOPS total, GPU "
                "170 INT8 sparse TOPS, 64 GB, 15-60 W); utilisation: MLPerf Inference Edge v3.0"
            ),
        ),
        NodeProfile(
            name="jetson_orin_nano",
            # Jetson Orin Nano 8GB: 40 INT8 sparse TOPS -> 20 dense INT8 -> 10 FP16 dense
            # (the 2024 "Super" firmware raises this to 67 TOPS; not assumed here)
            peak_flops=10e12,
            utilisation=0.30,  # [U3]
            memory_bytes=8 * GiB,  # 8 GB LPDDR5: datasheet
            idle_w=4.0,  # ~4 W module idle (approx.)
            active_w=15.0,  # 15 W max power mode: datasheet
            source=(
                "NVIDIA Jetson Orin Nano Series datasheet (40 INT8 sparse TOPS, 8 GB, 7-15 W); "
                "utilisation: MLPerf Inference Edge v3.0 (Orin family)"
            ),
        ),
        NodeProfile(
            name="snapdragon_8_gen_2",
            # Adreno 740 GPU ~3.5 TFLOP/s FP32: third-party estimate (Qualcomm publishes none)
            peak_flops=3.5e12,
            utilisation=0.10,  # [U4]
            memory_bytes=8 * GiB,  # 8 GB LPDDR5X: Samsung Galaxy S23 base model spec sheet
            idle_w=0.5,  # SoC + screen-on idle ~0.5 W (approx., AnandTech phone power tests)
            active_w=6.0,  # sustained SoC power under GPU load ~5-7 W (AnandTech / Geekerwan)
            source=(
                "Qualcomm Snapdragon 8 Gen 2 product brief (Adreno 740, LPDDR5X); GPU FP32 peak: "
                "third-party estimate; power: AnandTech/Geekerwan SoC power measurements (approx.); "
                "utilisation: Ignatov et al. ICCVW 2019"
            ),
        ),
        NodeProfile(
            name="raspberry_pi_5",
            # 4x Cortex-A76 @ 2.4 GHz x 2 NEON 128-bit FMA pipes (8 FP32 FMA = 16 FLOP/cycle)
            # = 4 * 2.4e9 * 16 = 153.6 GFLOP/s FP32 (no tensor cores)
            peak_flops=153.6e9,
            utilisation=0.25,  # PyTorch/ONNX CPU kernels on small models (assumed)
            memory_bytes=8 * GiB,  # 8 GB LPDDR4X model: Raspberry Pi 5 product brief
            idle_w=2.7,  # idle ~2.7 W: J. Geerling, Raspberry Pi 5 power measurements (2023)
            active_w=7.0,  # all-core stress ~7 W: same source
            source=(
                "Raspberry Pi 5 product brief (BCM2712, 4x Cortex-A76 2.4 GHz, 8 GB); Arm Cortex-A76 "
                "TRM (2x128-bit FMA); power: J. Geerling measurements 2023 (approx.)"
            ),
        ),
    )
}

LINKS: dict[str, LinkProfile] = {
    p.name: p
    for p in (
        LinkProfile(
            name="5g_nr_midband",
            downlink_bps=300e6,  # measured mid-band (n78/n41) DL ~200-400 Mbit/s
            uplink_bps=50e6,  # measured UL ~30-60 Mbit/s
            rtt_s=0.025,  # measured RTT ~20-30 ms (NSA)
            j_per_bit=1e-7,  # ~0.1 uJ/bit, order of magnitude from UE power models
            source=(
                "Narayanan et al., 'A Variegated Look at 5G in the Wild', SIGCOMM'21 (throughput, "
                "RTT, UE power models); Xu et al., 'Understanding Operational 5G', SIGCOMM'20; "
                "3GPP TS 38.306 for the (higher) peak rates"
            ),
        ),
        LinkProfile(
            name="lte",
            downlink_bps=30e6,  # typical LTE DL 20-40 Mbit/s (Opensignal Mobile Network Experience)
            uplink_bps=10e6,  # typical UL 5-15 Mbit/s (same)
            rtt_s=0.050,  # ~40-70 ms (Huang et al. MobiSys'12; Opensignal)
            # Huang et al.: UL 438 mW/Mbit/s, DL 52 mW/Mbit/s -> 0.44 / 0.05 uJ/bit (mean ~0.25)
            j_per_bit=2.5e-7,
            source=(
                "Huang et al., 'A Close Examination of Performance and Power Characteristics of "
                "4G LTE Networks', MobiSys'12 (power model, RTT); Opensignal reports (throughput)"
            ),
            j_per_bit_up=4.38e-7,
            j_per_bit_down=5.2e-8,
        ),
        LinkProfile(
            name="wifi_6",
            # IEEE 802.11ax 2x2, 80 MHz, MCS11 PHY rate 1.2 Gbit/s; ~half of it as goodput
            downlink_bps=600e6,
            uplink_bps=400e6,
            rtt_s=0.005,  # ~2-10 ms on a WLAN hop
            j_per_bit=1e-8,  # ~1 W radio at hundreds of Mbit/s -> ~10 nJ/bit (order of magnitude)
            source=(
                "IEEE 802.11ax-2021 (PHY rates); goodput and RTT: typical measured WLAN figures; "
                "energy: order of magnitude from chipset power (~1 W) over goodput"
            ),
        ),
        LinkProfile(
            name="fibre_metro",
            downlink_bps=10e9,  # 10GBASE-LR metro Ethernet (IEEE 802.3ae)
            uplink_bps=10e9,
            rtt_s=0.001,  # ~100 km of fibre at 5 us/km each way
            j_per_bit=2e-8,  # tens of nJ/bit per router/switch hop: Vishwanath et al. 2014
            source=(
                "IEEE 802.3ae (10 Gbit/s); fibre propagation ~5 us/km (ITU-T G.652 index ~1.47); "
                "Vishwanath et al., 'Modeling Energy Consumption in High-Capacity Routers and "
                "Switches', IEEE JSAC 2014; Baliga et al., JLT 2009"
            ),
        ),
        LinkProfile(
            name="wan_internet",
            downlink_bps=1e9,  # 1 Gbit/s business fibre uplink of an edge site
            uplink_bps=1e9,
            rtt_s=0.030,  # ~20-50 ms to the nearest cloud region within a continent
            # bottom-up, several core hops ~1e-7 J/bit (Baliga JLT 2009); top-down attributional
            # estimates (Aslan et al., J. Ind. Ecol. 2018, 0.06 kWh/GB in 2015) are ~100x larger
            j_per_bit=1e-7,
            source=(
                "Cloud inter-region latency tables (e.g. cloudping.co, Azure network round-trip "
                "latency statistics); Baliga et al., 'Energy Consumption in Optical IP Networks', "
                "JLT 2009; Aslan et al. 2018 for the top-down contrast"
            ),
        ),
    )
}

GRID: dict[str, GridProfile] = {
    p.name: p
    for p in (
        GridProfile(
            name="us_average",
            mean_g_per_kwh=370.0,  # EPA eGRID2022 US average ~823 lb/MWh = 373 g/kWh; Ember 2023 ~370
            min_g_per_kwh=300.0,  # hourly range: EIA Hourly Electric Grid Monitor (approx.)
            max_g_per_kwh=430.0,
            source="EPA eGRID2022; Ember Global Electricity Review 2024; EIA Hourly Electric Grid Monitor",
        ),
        GridProfile(
            name="eu_average",
            mean_g_per_kwh=250.0,  # EEA 2022 ~250 g/kWh; Ember European Electricity Review 2024
            min_g_per_kwh=180.0,  # hourly range (approx., ENTSO-E data via Electricity Maps)
            max_g_per_kwh=320.0,
            source="EEA greenhouse-gas intensity of electricity generation (2022); Ember EER 2024",
        ),
        GridProfile(
            name="france",
            mean_g_per_kwh=55.0,  # Ember 2023 ~55 g/kWh (nuclear + hydro)
            min_g_per_kwh=20.0,  # RTE eco2mix hourly range (approx.)
            max_g_per_kwh=100.0,
            source="Ember Global Electricity Review 2024; RTE eco2mix",
        ),
        GridProfile(
            name="poland",
            mean_g_per_kwh=660.0,  # Ember 2023 ~660 g/kWh (coal)
            min_g_per_kwh=560.0,  # hourly range (approx., ENTSO-E via Electricity Maps)
            max_g_per_kwh=760.0,
            source="Ember Global Electricity Review 2024; ENTSO-E transparency platform",
        ),
        GridProfile(
            name="california",
            mean_g_per_kwh=220.0,  # CAISO ~200-250 g/kWh (Ember US state data 2023)
            min_g_per_kwh=100.0,  # midday solar trough (the "duck curve"), CAISO Today's Outlook
            max_g_per_kwh=320.0,  # evening ramp peak
            source="Ember US electricity data 2023; CAISO Today's Outlook emissions (duck curve)",
        ),
        GridProfile(
            name="india",
            mean_g_per_kwh=710.0,  # Ember 2023 ~710 g/kWh (coal)
            min_g_per_kwh=620.0,  # midday solar dip (approx.)
            max_g_per_kwh=780.0,
            source="Ember Global Electricity Review 2024; CEA CO2 Baseline Database",
        ),
    )
}

#: Hour of peak solar output used by the diurnal carbon shape (local solar noon + DST).
SOLAR_PEAK_HOUR: float = 13.0
#: Daylight half-width of the solar bump, hours (06:00-20:00, a summer day).
SOLAR_HALF_WIDTH_H: float = 7.0
# Daily mean of the raw solar bump max(0, cos(pi/2 * (h-13)/7)): (2*7*2/pi)/24
_SOLAR_MEAN: float = (4.0 * SOLAR_HALF_WIDTH_H / np.pi) / 24.0


def carbon_intensity(region: str, hour_of_day: np.ndarray | float, trace: str = "flat") -> np.ndarray:
    """Grid carbon intensity in g CO2e/kWh at ``hour_of_day`` (0..24, local clock).

    ``trace="flat"`` returns the annual mean. ``trace="diurnal"`` subtracts a solar bump
    ``s(h) = max(0, cos(pi/2 * (h - 13) / 7))`` (daylight 06:00-20:00, peak at 13:00),
    centred so its daily mean is zero: ``I(h) = mean - k * (s(h) - mean(s))`` with the
    largest ``k`` that keeps ``I`` inside ``[min, max]``. The daily mean therefore equals the
    annual mean, the trough sits at 13:00 and the night is flat at the high end.
    """
    g = GRID[region]
    h = np.asarray(hour_of_day, dtype=float)
    if trace == "flat":
        return np.full(h.shape, g.mean_g_per_kwh)
    if trace != "diurnal":
        raise ValueError(f"trace: got {trace!r}; allowed values: 'flat', 'diurnal'")
    x = (np.mod(h, 24.0) - SOLAR_PEAK_HOUR) / SOLAR_HALF_WIDTH_H
    bump = np.where(np.abs(x) < 1.0, np.cos(0.5 * np.pi * x), 0.0) - _SOLAR_MEAN
    down = (g.mean_g_per_kwh - g.min_g_per_kwh) / (1.0 - _SOLAR_MEAN)  # room below the mean
    up = (g.max_g_per_kwh - g.mean_g_per_kwh) / _SOLAR_MEAN  # room above it
    k = min(down, up)
    return g.mean_g_per_kwh - k * bump
