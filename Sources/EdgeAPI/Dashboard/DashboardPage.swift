/// The live dashboard: one page, its style and script inline, nothing fetched from elsewhere.
/// It reads the bearer token from the address's fragment (`/#token=...`), follows the fleet
/// over Server-Sent Events (`/edgesim/v1/stream`) and calls the API for its buttons.
enum DashboardPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>edgesim fleet</title>
        <style>
        body { font: 13px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
        header { display: flex; gap: 1.5em; align-items: baseline; padding: .6em 1em; background: #1d2330; color: #fff; }
        header h1 { font-size: 16px; margin: 0; }
        #live[data-live="yes"] { color: #7fdc8a; } #live[data-live="no"] { color: #f2a65a; }
        main { display: grid; grid-template-columns: minmax(520px, 3fr) minmax(360px, 2fr); gap: 1em; padding: 1em; }
        section { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: .6em .8em; margin-bottom: 1em; }
        h2 { font-size: 13px; margin: 0 0 .4em; text-transform: uppercase; letter-spacing: .05em; color: #5a6474; }
        svg { width: 100%; height: auto; background: #eef3f8; border-radius: 4px; }
        .graticule { stroke: #d5dde7; stroke-width: .5; fill: none; }
        .link { stroke: #8aa0b8; stroke-width: 1; opacity: .7; }
        .link[data-state="changed"] { stroke: #e0902d; stroke-dasharray: 4 2; opacity: 1; }
        .link[data-state="cut"] { stroke: #d33; stroke-dasharray: 1 3; opacity: 1; }
        .node { stroke: #fff; stroke-width: 1; }
        .node[data-state="up"] { fill: #2a9d55; } .node[data-state="down"] { fill: #e0902d; }
        .node[data-state="stopped"] { fill: #99a1ad; } .node[data-state="exited"] { fill: #d33; }
        .client { fill: #2f6fd6; } .origin { fill: #7b3fc4; }
        .label { font-size: 9px; fill: #333; pointer-events: none; }
        table { border-collapse: collapse; width: 100%; }
        td, th { text-align: left; padding: 2px 6px; border-bottom: 1px solid #eef0f3; white-space: nowrap; }
        th { color: #5a6474; font-weight: 600; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; }
        .state-up { color: #2a9d55; } .state-down, .state-changed { color: #e0902d; } .state-stopped { color: #99a1ad; }
        .state-exited, .state-cut { color: #d33; }
        button { font: inherit; font-size: 11px; padding: 1px 6px; margin-right: 2px; cursor: pointer; }
        #timeline { list-style: none; padding: 0; margin: 0; max-height: 260px; overflow: auto; }
        #timeline li { padding: 2px 0; border-bottom: 1px solid #f0f2f5; }
        #timeline time { color: #5a6474; margin-right: .6em; font-variant-numeric: tabular-nums; }
        .scroll { max-height: 320px; overflow: auto; }
        #problem { color: #d33; }
        </style>
        </head>
        <body>
        <header><h1 id="title">edgesim</h1><span id="mode"></span><span id="live" data-live="no">connecting…</span><span id="problem"></span></header>
        <main>
        <div>
          <section><h2>Map</h2><svg id="map" viewBox="0 0 1000 560" role="img" aria-label="edge nodes, clients, origins and links"></svg></section>
          <section><h2>Applications</h2><table id="apps"><thead><tr><th>id</th><th>name</th><th>protocol</th><th>addresses</th>
            <th>open</th><th>conns</th><th>bytes</th><th></th></tr></thead><tbody></tbody></table></section>
          <section><h2>Timeline</h2><ul id="timeline"></ul></section>
        </div>
        <div>
          <section><h2>Edge nodes</h2><div class="scroll"><table id="nodes"><thead><tr><th>node</th><th>city</th><th>state</th>
            <th>open</th><th>conns</th><th></th></tr></thead><tbody></tbody></table></div></section>
          <section><h2>Links</h2><div class="scroll"><table id="links"><thead><tr><th>link</th><th>rtt</th><th>state</th><th></th>
            </tr></thead><tbody></tbody></table></div></section>
        </div>
        </main>
        <script>
        "use strict";
        window.dashboardErrors = [];
        window.addEventListener("error", e => window.dashboardErrors.push(String(e.message)));
        const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
        const svgNS = "http://www.w3.org/2000/svg";
        const $ = id => document.getElementById(id);
        // Equirectangular, with room below the map for hosts without coordinates.
        const project = p => [(p.lon + 180) / 360 * 1000, (90 - p.lat) / 180 * 500];
        function el(tag, attrs, text) {
          const e = tag.startsWith("svg:") ? document.createElementNS(svgNS, tag.slice(4)) : document.createElement(tag);
          for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
          if (text !== undefined) e.textContent = text;
          return e;
        }
        async function call(path) {
          const answer = await fetch(path, { method: "POST", headers: { Authorization: "Bearer " + token } });
          const body = await answer.json().catch(() => ({}));
          $("problem").textContent = body.success ? "" : (body.errors || []).map(e => e.message).join("; ");
        }
        function button(text, path) {
          const b = el("button", { type: "button", "data-action": path }, text);
          b.addEventListener("click", () => call(path));
          return b;
        }
        function drawMap(state) {
          const map = $("map");
          map.replaceChildren();
          for (let lon = -180; lon <= 180; lon += 30) map.append(el("svg:line", { class: "graticule", x1: (lon + 180) / 360 * 1000, y1: 0, x2: (lon + 180) / 360 * 1000, y2: 500 }));
          for (let lat = -60; lat <= 60; lat += 30) map.append(el("svg:line", { class: "graticule", x1: 0, y1: (90 - lat) / 180 * 500, x2: 1000, y2: (90 - lat) / 180 * 500 }));
          const where = {};
          let spare = 0;
          const hosts = [...state.nodes.map(h => ["node", h]), ...state.clients.map(h => ["client", h]), ...state.origins.map(h => ["origin", h])];
          for (const [, h] of hosts) {
            where[h.name] = h.place && h.place.lat !== undefined ? project(h.place) : [20 + (spare++ % 40) * 24, 530];
          }
          for (const link of state.links) {
            const [a, b] = [where[link.a], where[link.b]];
            if (!a || !b) continue;
            map.append(el("svg:line", { class: "link", "data-link": link.a + "-" + link.b, "data-state": link.state, x1: a[0], y1: a[1], x2: b[0], y2: b[1] }));
          }
          for (const [kind, h] of hosts) {
            const [x, y] = where[h.name];
            let shape;
            if (kind === "node") shape = el("svg:circle", { class: "node", "data-node": h.name, "data-state": h.state, cx: x, cy: y, r: 6 });
            else if (kind === "client") shape = el("svg:rect", { class: "client", "data-client": h.name, x: x - 4, y: y - 4, width: 8, height: 8 });
            else shape = el("svg:path", { class: "origin", "data-origin": h.name, d: `M${x} ${y - 6}L${x + 6} ${y}L${x} ${y + 6}L${x - 6} ${y}Z` });
            shape.append(el("svg:title", {}, `${h.name}${h.city ? " (" + h.city + ")" : ""}${h.state ? ": " + h.state : ""}`));
            map.append(shape, el("svg:text", { class: "label", x: x + 7, y: y - 5 }, h.name));
          }
        }
        function drawTables(state) {
          const nodes = $("nodes").tBodies[0];
          nodes.replaceChildren(...state.nodes.map(n => {
            const row = el("tr", { "data-node-row": n.name, "data-state": n.state });
            row.append(el("td", {}, n.name), el("td", {}, n.city), el("td", { class: "state-" + n.state }, n.state),
              el("td", { class: "num" }, n.open), el("td", { class: "num" }, n.connections));
            const actions = el("td");
            if (n.state === "up" || n.state === "down") actions.append(button("stop", `/edgesim/v1/nodes/${n.name}/stop`), button("kill", `/edgesim/v1/nodes/${n.name}/kill`));
            else actions.append(button("start", `/edgesim/v1/nodes/${n.name}/start`));
            row.append(actions);
            return row;
          }));
          const links = $("links").tBodies[0];
          links.replaceChildren(...state.links.map(l => {
            const row = el("tr", { "data-link-row": l.a + "-" + l.b });
            row.append(el("td", {}, l.a + " – " + l.b), el("td", { class: "num" }, l.rtt_ms.toFixed(1) + " ms"), el("td", { class: "state-" + l.state }, l.state));
            const actions = el("td");
            actions.append(l.state === "cut" ? button("restore", `/edgesim/v1/links/${l.a}/${l.b}/restore`) : button("cut", `/edgesim/v1/links/${l.a}/${l.b}/cut`));
            row.append(actions);
            return row;
          }));
          const apps = $("apps").tBodies[0];
          apps.replaceChildren(...state.apps.flatMap(a => {
            const row = el("tr", { "data-app-row": a.id });
            row.append(el("td", {}, a.id), el("td", {}, a.name), el("td", {}, a.protocol), el("td", {}, a.addresses.join(", ")),
              el("td", { class: "num" }, a.open), el("td", { class: "num" }, a.connections), el("td", { class: "num" }, a.bytes));
            const actions = el("td");
            actions.append(button("rotate", `/edgesim/v1/apps/${a.id}/rotate`));
            row.append(actions);
            const rows = [row];
            for (const [node, routes] of Object.entries(a.paths || {})) {
              for (const r of routes) {
                const path = el("tr", { class: "path" });
                path.append(el("td"), el("td", { colspan: 7 }, `${node} → ${r.via.length ? r.via.join(" → ") + " → " : ""}${r.destination} (${r.expected_ms.toFixed(1)} ms)`));
                rows.push(path);
              }
            }
            return rows;
          }));
          $("timeline").replaceChildren(...state.timeline.slice().reverse().map(t => {
            const item = el("li", { "data-kind": t.kind });
            item.append(el("time", {}, new Date(t.time * 1000).toISOString().slice(11, 19)), document.createTextNode(t.text));
            return item;
          }));
        }
        let shown = "";
        function show(state) {
          // Drawn again only when something changed, so a button is not replaced under the pointer.
          const { time, ...rest } = state;
          const text = JSON.stringify(rest);
          document.body.dataset.updated = String(time);
          if (text === shown) return;
          shown = text;
          $("title").textContent = "edgesim: " + state.name;
          $("mode").textContent = state.mode + " mode, " + state.nodes.length + " edge nodes";
          drawMap(state);
          drawTables(state);
        }
        function follow() {
          const stream = new EventSource("/edgesim/v1/stream?access_token=" + encodeURIComponent(token));
          stream.onopen = () => { $("live").dataset.live = "yes"; $("live").textContent = "live"; };
          stream.onmessage = m => show(JSON.parse(m.data));
          stream.onerror = () => { $("live").dataset.live = "no"; $("live").textContent = "reconnecting…"; };
        }
        follow();
        </script>
        </body>
        </html>
        """#
}
