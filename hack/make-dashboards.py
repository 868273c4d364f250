#!/usr/bin/env python3
"""Writes the chart's Grafana dashboards (charts/gpu-autoscaler/dashboards/*.json).

The dashboards are generated so that every panel has the same shape (a Prometheus
datasource variable, a job variable, timeseries with units); edit the panel lists here
and rerun: hack/make-dashboards.py. tests/charts checks every query with promtool, and
tests/e2e/dashboards_integration_test.cc runs each against a real Prometheus scraping the
real programs and fails on a panel without data. Rates use Grafana's $__rate_interval.
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
R = "$__rate_interval"


def rate(metric, by, extra=""):
    sel = f"{J}, {extra}" if extra else J
    return f"sum by ({by}) (rate({metric}{{{sel}}}[{R}]))"


def increase(metric, by):
    return f"sum by ({by}) (increase({metric}{{{J}}}[{R}]))"


CLUSTER = dashboard(
    "gpu-autoscaler-cluster", "gpu-autoscaler / Cluster GPUs",
    "GPU capacity, allocation, utilisation, sharing and idle GPUs across the cluster "
    "(the manager's inventory and cost metering, the node agents' NVML readings, the scheduler).",
    ".*(manager|node-agent|scheduler).*",
    [
        ("GPUs by model", "nvidia.com/gpu on nodes: capacity, allocatable, and allocatable on Ready schedulable nodes.",
         [(f"sum by (model, state) (gpu_autoscaler_node_gpus{{{J}}})", "{{model}} {{state}}")],
         "short"),
        ("GPU nodes by model", "Nodes with nvidia.com/gpu capacity.",
         [(f"sum by (model) (gpu_autoscaler_gpu_nodes{{{J}}})", "{{model}}")], "short"),
        ("GPU allocation", "Share of allocatable GPU devices that pods hold: the requests of every bound pod that is not Succeeded or Failed over the nodes' allocatable, counted as the scheduler counts them; overall and per resource (nvidia.com/gpu, nvidia.com/gpu.shared replicas, nvidia.com/mig-* instances).",
         [(f"sum(gpu_autoscaler_node_allocated_gpus{{{J}}}) / sum(gpu_autoscaler_node_allocatable_gpus{{{J}}})",
           "all GPU resources"),
          (f"sum by (resource) (gpu_autoscaler_node_allocated_gpus{{{J}}}) / sum by (resource) (gpu_autoscaler_node_allocatable_gpus{{{J}}} > 0)",
           "{{resource}}")], "percentunit"),
        ("GPU utilisation", "NVML utilisation, cluster average and per node (not on MIG GPUs).",
         [(f"avg(DCGM_FI_DEV_GPU_UTIL{{{J}}})", "cluster"),
          (f"avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL{{{J}}})", "{{Hostname}}")], "percent"),
        ("Idle GPUs", "GPUs no pod holds, by node; and pods whose allocated GPUs stayed idle for the whole window.",
         [(f"sum by (node) (gpu_autoscaler_node_idle_gpus{{{J}}})", "unallocated {{node}}"),
          (f"max(gpu_autoscaler_idle_gpu{{{J}, measure=\"pods_idle_now\"}})", "pods idle now")],
         "short"),
        ("Pods per sharing policy", "Live pods admitted under each GPUSharingPolicy, by strategy (timeSlicing, mps, mig, exclusive).",
         [(f"sum by (policy, strategy) (gpu_autoscaler_sharing_policy_pods{{{J}}})",
           "{{policy}} ({{strategy}})")], "short"),
        ("MIG GPUs", "GPUs with MIG mode on, per node (the node agents' NVML readings).",
         [(f"sum by (Hostname) (gpu_autoscaler_node_gpu_mig_enabled{{{J}}})", "{{Hostname}}")],
         "short"),
        ("Fragmentation", "Expected fragmented share of idle GPU capacity after the scheduler's last bind.",
         [(f"max(gpu_autoscaler_scheduler_cluster_fragmentation_ratio{{{J}}})", "fragmentation")],
         "percentunit"),
    ])

COST = dashboard(
    "gpu-autoscaler-cost", "gpu-autoscaler / Cost and Budgets",
    "GPU cost metered every second by namespace, team, project and capacity tier, idle capacity, "
    "and Budgets: spend against the limit and the alerts sent (docs/cost.md).",
    ".*manager.*",
    [
        ("Cost per hour by namespace", "Current cost rate of the pods in each namespace (top series; the rest under \"other\").",
         [(f"sum by (namespace) (gpu_autoscaler_cost_per_hour{{{J}}})", "{{namespace}}")],
         "currencyUSD"),
        ("Cost per hour by team", "By the pods' team label.",
         [(f"sum by (team) (gpu_autoscaler_cost_per_hour{{{J}}})", "{{team}}")], "currencyUSD"),
        ("Cost per hour by project", "By the pods' project label.",
         [(f"sum by (project) (gpu_autoscaler_cost_per_hour{{{J}}})", "{{project}}")],
         "currencyUSD"),
        ("Cost per hour by tier and GPU model", "Spot, on-demand or reserved capacity.",
         [(f"sum by (tier, gpu_model) (gpu_autoscaler_cost_per_hour{{{J}}})",
           "{{tier}} {{gpu_model}}")], "currencyUSD"),
        ("Idle capacity cost", "Cost per hour of GPU capacity no pod holds, by node; and the cost of allocated GPUs left idle since start.",
         [(f"sum by (node) (gpu_autoscaler_node_idle_cost_per_hour{{{J}}})", "unallocated {{node}}"),
          (f"max(gpu_autoscaler_idle_gpu{{{J}, measure=\"idle_cost\"}})", "allocated but idle (since start)")],
         "currencyUSD"),
        ("Budget spend and limit", "Each Budget's and ClusterBudget's spend this period, its amount and the forecast for the period's end.",
         [(f"max by (kind, namespace, budget) (gpu_autoscaler_budget_spent{{{J}}})",
           "{{kind}} {{namespace}}/{{budget}} spent"),
          (f"max by (kind, namespace, budget) (gpu_autoscaler_budget_amount{{{J}}})",
           "{{kind}} {{namespace}}/{{budget}} limit"),
          (f"max by (kind, namespace, budget) (gpu_autoscaler_budget_forecast{{{J}}})",
           "{{kind}} {{namespace}}/{{budget}} forecast")], "currencyUSD"),
        ("Budget used", "Spend as a share of the Budget's amount (thresholds alert at 80% and 100%).",
         [(f"max by (kind, namespace, budget) (gpu_autoscaler_budget_spent{{{J}}}) / max by (kind, namespace, budget) (gpu_autoscaler_budget_amount{{{J}}} > 0)",
           "{{kind}} {{namespace}}/{{budget}}")], "percentunit"),
        ("Budget alerts", "Threshold alerts delivered (sent) or not (failed), by channel.",
         [(increase("gpu_autoscaler_budget_notifications_total", "channel, result"),
           "{{channel}} {{result}}")], "short"),
        ("Budget evaluations", "Budget evaluations per second by result.",
         [(rate("gpu_autoscaler_budget_evaluations_total", "result"), "{{result}}")], "ops"),
        ("Metering health", "Seconds not yet stored, cost-store errors per second and nodes without a price.",
         [(f"max(gpu_autoscaler_cost_backlog_seconds{{{J}}})", "backlog (s)"),
          (f"sum(rate(gpu_autoscaler_cost_store_errors_total{{{J}}}[{R}]))", "store errors/s"),
          (f"max(gpu_autoscaler_cost_unpriced_nodes{{{J}}})", "unpriced nodes")], "short"),
    ])

AUTOSCALER = dashboard(
    "gpu-autoscaler-autoscaler", "gpu-autoscaler / Autoscaler",
    "GPUNodePools (nodes per tier, desired, scale actions, pending GPU pods, spot interruptions, "
    "provider errors), the scheduler and the controllers (docs/autoscaling.md).",
    ".*(manager|scheduler).*",
    [
        ("Pool nodes by tier", "Nodes registered per pool and tier, and what the pool asked its provider for.",
         [(f"sum by (pool, tier) (gpu_autoscaler_node_pool_nodes{{{J}}})", "{{pool}} {{tier}}"),
          (f"sum by (pool, tier) (gpu_autoscaler_node_pool_desired_nodes{{{J}}})",
           "{{pool}} {{tier}} desired")], "short"),
        ("Pending GPU pods", "Unschedulable GPU pods each pool could serve.",
         [(f"sum by (pool) (gpu_autoscaler_node_pool_pending_gpu_pods{{{J}}})", "{{pool}}")],
         "short"),
        ("Scale actions", "ScaleUp, Cordon, Evict, Terminate and CapacityError actions, by pool and tier.",
         [(increase("gpu_autoscaler_node_pool_scale_actions_total", "pool, action, tier"),
           "{{pool}} {{action}} {{tier}}")], "short"),
        ("Spot interruptions", "Interruption notices answered with replacement capacity, by pool and the node's tier.",
         [(increase("gpu_autoscaler_node_pool_interruption_replacements_total", "pool, tier"),
           "{{pool}} {{tier}}")], "short"),
        ("Provider errors", "Pool passes that met a provider error, by the ProviderError condition's reason.",
         [(increase("gpu_autoscaler_node_pool_provider_errors_total", "pool, reason"),
           "{{pool}} {{reason}}")], "short"),
        ("Scheduling attempts", "The scheduler's attempts per second by result, and binds by result.",
         [(rate("gpu_autoscaler_scheduler_attempts_total", "result"), "attempts {{result}}"),
          (rate("gpu_autoscaler_scheduler_bind_total", "result"), "binds {{result}}")], "ops"),
        ("Scheduler queue and cache", "Pods waiting in the scheduler's queue; nodes and pods in its cache.",
         [(f"sum(gpu_autoscaler_scheduler_pending_pods{{{J}}})", "pending pods"),
          (f"sum(gpu_autoscaler_scheduler_cache_nodes{{{J}}})", "cached nodes"),
          (f"sum(gpu_autoscaler_scheduler_cache_pods{{{J}}})", "cached pods")], "short"),
        ("Scheduling latency", "p99 of one scheduling decision.",
         [(f"histogram_quantile(0.99, sum by (le) (rate(gpu_autoscaler_scheduler_attempt_duration_seconds_bucket{{{J}}}[{R}])))",
           "p99")], "s"),
        ("Preemption", "Preemption attempts by result (preempted, no_candidate, waiting, error; "
         "the extender's /preempt answers too), and the pods evicted (or named to kube-scheduler) "
         "for pods and gangs of higher priority.",
         [(increase("gpu_autoscaler_scheduler_preemption_attempts_total", "result"),
           "attempts {{result}}"),
          (f"sum(increase(gpu_autoscaler_scheduler_preemption_victims_total{{{J}}}[{R}]))",
           "victims")], "short"),
        ("Preemption writes", "p99 of one preemption's API writes (the victims evicted, then "
         "the nominations), by result; they run beside the scheduling loop unless "
         "--async-preemption=false.",
         [(f"histogram_quantile(0.99, sum by (le, result) (rate(gpu_autoscaler_scheduler_preemption_write_duration_seconds_bucket{{{J}}}[{R}])))",
           "p99 {{result}}")], "s"),
        ("Controller reconciles", "Reconciles per second by controller and result.",
         [(rate("controller_runtime_reconcile_total", "controller, result"),
           "{{controller}} {{result}}")], "ops"),
        ("Work queues", "Items waiting in each controller's work queue.",
         [(f"max by (name) (workqueue_depth{{{J}}})", "{{name}}")], "short"),
    ])

WEBHOOK = dashboard(
    "gpu-autoscaler-webhook", "gpu-autoscaler / Admission webhook",
    "Admissions, denials and latency of gpu-autoscaler-webhook (docs/webhooks.md).",
    ".*webhook.*",
    [
        ("Reviews by endpoint and verdict", "Admission reviews answered per second.",
         [(rate("gpu_autoscaler_webhook_reviews_total", "endpoint, verdict"),
           "{{endpoint}} {{verdict}}")], "reqps"),
        ("Denials by reason", "Reviews denied per second (budget, invalid_object, ...).",
         [(rate("gpu_autoscaler_webhook_denials_total", "reason"), "{{reason}}")], "reqps"),
        ("Review latency", "Time to answer one review, p50 and p99 by endpoint.",
         [(f"histogram_quantile(0.5, sum by (le, endpoint) (rate(gpu_autoscaler_webhook_review_duration_seconds_bucket{{{J}}}[{R}])))",
           "p50 {{endpoint}}"),
          (f"histogram_quantile(0.99, sum by (le, endpoint) (rate(gpu_autoscaler_webhook_review_duration_seconds_bucket{{{J}}}[{R}])))",
           "p99 {{endpoint}}")], "s"),
        ("Requests rejected before review", "HTTP errors answered before any review, by reason (body too large, wrong content type, ...).",
         [(rate("gpu_autoscaler_webhook_rejected_requests_total", "reason"), "{{reason}}")],
         "reqps"),
        ("Connections", "TLS connections open, and accepted per second by protocol.",
         [(f"sum(gpu_autoscaler_webhook_open_connections{{{J}}})", "open"),
          (rate("gpu_autoscaler_webhook_connections_total", "protocol"),
           "accepted {{protocol}}/s")], "short"),
        ("Budgets known to the webhook", "Budgets in the admission snapshot, valid and invalid.",
         [(f"max by (state) (gpu_autoscaler_webhook_budgets{{{J}}})", "{{state}}")], "short"),
    ])

NODE_AGENT = dashboard(
    "gpu-autoscaler-node-agent", "gpu-autoscaler / Node agent",
    "GPU utilisation, memory and NVML health, PSI, QoS pools and evictions from "
    "gpu-autoscaler-node-agent (docs/node-agent.md).",
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
         [(f"histogram_quantile(0.99, sum by (le, node) (rate(gpu_autoscaler_node_nvml_poll_duration_seconds_bucket{{{J}}}[{R}])))",
           "{{node}}")], "s"),
        ("NVML errors and report syncs", "Hung polls, failed per-GPU calls and NodeResourceReport syncs per second.",
         [(rate("gpu_autoscaler_node_nvml_poll_timeouts_total", "node"), "timeouts {{node}}"),
          (rate("gpu_autoscaler_node_nvml_call_errors_total", "node"), "call errors {{node}}"),
          (rate("gpu_autoscaler_node_report_syncs_total", "result"), "report syncs {{result}}")],
         "ops"),
        ("Pressure stall (PSI)", "The pressure figure each PSI eviction trigger reads, by node and resource.",
         [(f"max by (node, resource) (gpu_autoscaler_node_pressure_percent{{{J}}})",
           "{{node}} {{resource}}")], "percent"),
        ("Pressure high", "1 while a resource's pressure is armed above its threshold.",
         [(f"max by (node, resource) (gpu_autoscaler_node_pressure_high{{{J}}})",
           "{{node}} {{resource}}")], "short"),
        ("PSI evictions", "Pods evicted for node pressure, by resource and result.",
         [(increase("gpu_autoscaler_node_pressure_evictions_total", "node, resource, result"),
           "{{node}} {{resource}} {{result}}")], "short"),
        ("QoS pools: CPUs", "CPUs in each Katalyst QoS pool (shared, reclaimed, dedicated, reserve).",
         [(f"sum by (node, pool) (gpu_autoscaler_node_qos_pool_cpus{{{J}}})", "{{node}} {{pool}}")],
         "short"),
        ("QoS pools: pods", "Pods in each QoS pool, and pods the planner could not serve as asked.",
         [(f"sum by (node, pool) (gpu_autoscaler_node_qos_pool_pods{{{J}}})", "{{node}} {{pool}}"),
          (f"sum by (node) (gpu_autoscaler_node_qos_pod_problems{{{J}}})", "{{node}} problems")],
         "short"),
        ("Reclaimable resources", "CPU (cores) and memory advertised for reclaimed_cores pods.",
         [(f"sum by (node) (gpu_autoscaler_node_reclaimable_millicpu{{{J}}}) / 1000", "{{node}} CPU cores"),
          (f"sum by (node) (gpu_autoscaler_node_reclaimable_memory_bytes{{{J}}}) / 2^30",
           "{{node}} memory GiB")], "short"),
        ("QoS passes and cgroup writes", "QoS pool passes and cgroup file writes per second by result.",
         [(rate("gpu_autoscaler_node_qos_syncs_total", "result"), "passes {{result}}"),
          (rate("gpu_autoscaler_node_cgroup_writes_total", "result"), "writes {{result}}")],
         "ops"),
    ])

BOARDS = (("cluster.json", CLUSTER), ("cost.json", COST), ("autoscaler.json", AUTOSCALER),
          ("webhook.json", WEBHOOK), ("node-agent.json", NODE_AGENT))
for name, d in BOARDS:
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(d, f, indent=2)
        f.write("\n")
