"""Drives a running edgesim fleet's API with Cloudflare's own Python SDK, one step per call.

usage: SpectrumSDKClient.py BASE_URL TOKEN ZONE_NAME STEP [APP_ID]
steps: create, list, update APP_ID, delete APP_ID, analytics, bad-token, bad-body
Prints one JSON object with what the step saw.
"""
import json
import sys

import cloudflare

base_url, token, zone_name, step = sys.argv[1:5]
client = cloudflare.Cloudflare(api_token=token, base_url=base_url, max_retries=0)


def zone_id():
    zones = [zone for zone in client.zones.list(name=zone_name)]
    return zones[0].id


def show(app):
    return {"id": app.id, "protocol": app.protocol, "dns": app.dns.name, "origin_direct": app.origin_direct}


if step == "create":
    app = client.spectrum.apps.create(
        zone_id=zone_id(),
        protocol="tcp/8001",
        dns={"type": "CNAME", "name": "sdk.up.example"},
        origin_direct=["tcp://origin-seattle:8001"],
        proxy_protocol="off",
        tls="off",
    )
    print(json.dumps(show(app)))
elif step == "list":
    print(json.dumps({"apps": [show(app) for app in client.spectrum.apps.list(zone_id=zone_id(), per_page=1)]}))
elif step == "update":
    app = client.spectrum.apps.update(
        sys.argv[5],
        zone_id=zone_id(),
        protocol="tcp/8002",
        dns={"type": "CNAME", "name": "sdk.up.example"},
        origin_direct=["tcp://origin-seattle:8002"],
    )
    print(json.dumps(show(app)))
elif step == "delete":
    deleted = client.spectrum.apps.delete(sys.argv[5], zone_id=zone_id())
    print(json.dumps({"id": deleted.id}))
elif step == "analytics":
    summary = client.spectrum.analytics.events.summaries.get(
        zone_id=zone_id(), dimensions=["appID", "event"], metrics=["count", "bytesIngress"]
    )
    current = client.spectrum.analytics.aggregates.currents.get(zone_id=zone_id())
    print(
        json.dumps(
            {
                "rows": [{"dimensions": row.dimensions, "metrics": row.metrics} for row in summary.data],
                "current": [{"appID": item.app_id, "connections": item.connections} for item in current],
            }
        )
    )
elif step == "bad-token":
    try:
        cloudflare.Cloudflare(api_token="wrong", base_url=base_url, max_retries=0).zones.list()
        print(json.dumps({"status": 200}))
    except cloudflare.APIStatusError as error:
        print(json.dumps({"status": error.status_code, "body": error.body}))
elif step == "bad-body":
    try:
        client.spectrum.apps.create(
            zone_id=zone_id(), protocol="tcp/70000", dns={"type": "CNAME", "name": "bad.up.example"}, origin_direct=["tcp://origin-seattle:8001"]
        )
        print(json.dumps({"status": 200}))
    except cloudflare.APIStatusError as error:
        print(json.dumps({"status": error.status_code, "body": error.body}))
