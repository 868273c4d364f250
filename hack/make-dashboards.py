#!/usr/bin/env python3
"""Writes the chart's Grafana dashboards (charts/gpu-autoscaler/dashboards/*.json).

The dashboards are generated so that every panel has the same shape (a Prometheus
datasource variable, a job variable, timeseries with units); edit the panel lists here
and rerun: hack/make-dashboards.py. tests/charts checks every query with promtool.
"""
import json
import os

OUT = os.path.join(os.path.dirname(__file__), "..", "charts", "gpu-autoscaler", "dashboards")


def panel(i, title, description, targets, unit, kind="timeseries", width=12):
    return {
        "id": i + 1,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": width, "x": (i % 2) * 12 if width == 12 else 0, "y": (i // 2) * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + n), "expr": expr, "legendFormat": legend,
             "datasource": {"type": "prometheus", "uid": "${datasource}"}}
            for n, (expr, legend) in enumerate(targets)
        ],
    }


def dashboard(uid, title, description, job_regex, panels):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["gpu-autoscaler"],
        "schemaVersion": 39,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus",
             "label": "Prometheus"},
            {"name": "job", "type": "query", "label": "job",
             "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "query": {"query": f'label_values(up{{job=~"{job_regex}"}}, job)',
                       "refId": "jobs"},
             "includeAll": True, "multi": True, "refresh": 2},
        ]},
        "panels": [panel(i, *p) for i, p in enumerate(panels)],
    }


J = 'job=~"$job"'
WEBHOOK = dashboard(
    "gpu-autoscaler-webhook", "gpu-autoscaler / Admission webhook",
    "Admissions, denials and latency of gpu-autoscaler-webhook (docs/webhooks.md).",
    ".*webhook.*",
    [
        ("Reviews by endpoint and verdict", "Admission reviews answered per second.",
         [(f"sum by (endpoint, verdict) (rate(gpu_autoscaler_webhook_reviews_total{{{J}}}[5m]))",
           "{{endpoint}} {{verdict}}")], "reqps"),
        ("Denials by reason", "Reviews denied per second (budget, invalid_object, ...).",
         [(f"sum by (reason) (rate(gpu_autoscaler_webhook_denials_total{{{J}}}[5m]))",
           "{{reason}}")], "reqps"),
        ("Review latency", "Time to answer one review, p50 and p99 by endpoint.",
         [(f"histogram_quantile(0.5, sum by (le, endpoint) (rate(gpu_autoscaler_webhook_review_duration_seconds_bucket{{{J}}}[5m])))",
           "p50 {{endpoint}}"),
          (f"histogram_quantile(0.99, sum by (le, endpoint) (rate(gpu_autoscaler_webhook_review_duration_seconds_bucket{{{J}}}[5m])))",
           "p99 {{endpoint}}")], "s"),
        ("Requests rejected before review", "HTTP errors answered before any review, by reason (body too large, wrong content type, ...).",
         [(f"sum by (reason) (rate(gpu_autoscaler_webhook_rejected_requests_total{{{J}}}[5m]))",
           "{{reason}}")], "reqps"),
        ("Connections", "TLS connections open, and accepted per second by protocol.",
         [(f"sum(gpu_autoscaler_webhook_open_connections{{{J}}})", "open"),
          (f"sum by (protocol) (rate(gpu_autoscaler_webhook_connections_total{{{J}}}[5m]))",
           "accepted {{protocol}}/s")], "short"),
        ("Budgets known to the webhook", "Budgets in the admission snapshot, valid and invalid.",
         [(f"max by (state) (gpu_autoscaler_webhook_budgets{{{J}}})", "{{state}}")], "short"),
    ])

NODE_AGENT = dashboard(
    "gpu-autoscaler-node-agent", "gpu-autoscaler / Node agent",
    "GPU utilisation, memory and NVML health from gpu-autoscaler-node-agent (docs/node-agent.md).",
    ".*node-agent.*",
    [
        ("GPU utilisation", "Per GPU, % (not on MIG GPUs, where NVML has none).",
         [(f"avg by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL{{{J}}})", "{{Hostname}} GPU {{gpu}}")],
         "percent"),
        ("GPU memory used", "Framebuffer used per GPU or MIG device.",
         [(f"sum by (Hostname, gpu, GPU_I_PROFILE) (DCGM_FI_DEV_FB_USED{{{J}}}) * 1048576",
           "{{Hostname}} GPU {{gpu}} {{GPU_I_PROFILE}}")], "bytes"),
        ("Busiest GPU processes", "A process's SM share over NVML's sample period (top 10).",
         [(f"topk(10, gpu_autoscaler_node_gpu_process_sm_utilization{{{J}}})",
           "{{Hostname}} GPU {{gpu}} pid {{pid}}")], "percent"),
        ("NVML state", "1 while NVML answers on the node.",
         [(f"min by (node) (gpu_autoscaler_node_nvml_up{{{J}}})", "{{node}}")], "short"),
        ("NVML poll duration", "p99 of a full NVML poll, by node.",
         [(f"histogram_quantile(0.99, sum by (le, node) (rate(gpu_autoscaler_node_nvml_poll_duration_seconds_bucket{{{J}}}[5m])))",
           "{{node}}")], "s"),
        ("NVML errors and report syncs", "Hung polls, failed per-GPU calls and NodeResourceReport syncs per second.",
         [(f"sum by (node) (rate(gpu_autoscaler_node_nvml_poll_timeouts_total{{{J}}}[5m]))",
           "timeouts {{node}}"),
          (f"sum by (node) (rate(gpu_autoscaler_node_nvml_call_errors_total{{{J}}}[5m]))",
           "call errors {{node}}"),
          (f"sum by (result) (rate(gpu_autoscaler_node_report_syncs_total{{{J}}}[5m]))",
           "report syncs {{result}}")], "ops"),
    ])

for name, d in (("webhook.json", WEBHOOK), ("node-agent.json", NODE_AGENT)):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(d, f, indent=2)
        f.write("\n")
