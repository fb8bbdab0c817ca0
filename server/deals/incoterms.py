"""The eleven Incoterms of ICC's 2020 edition, the only delivery terms an RFQ may name."""

from __future__ import annotations

INCOTERMS_2020: dict[str, str] = {
    "EXW": "Ex Works", "FCA": "Free Carrier", "CPT": "Carriage Paid To", "CIP": "Carriage and Insurance Paid To",
    "DAP": "Delivered at Place", "DPU": "Delivered at Place Unloaded", "DDP": "Delivered Duty Paid",
    "FAS": "Free Alongside Ship", "FOB": "Free on Board", "CFR": "Cost and Freight",
    "CIF": "Cost, Insurance and Freight",
}
