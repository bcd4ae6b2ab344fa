"use strict";
// What osmgap's map pages share (report.html, scan map.html): the basemap, the OSM roads, JOSM
// remote control and iD links, popups. Text from data is written with textContent, never as HTML.
const osmgap = (() => {
  const params = new URLSearchParams(location.search);

  function newMap(id, data) {
    const map = L.map(id, { zoomSnap: 0.25, fadeAnimation: false });  // a popup shows whole at once
    if (data.basemap) {
      L.tileLayer(data.basemap.url, {
        attribution: data.basemap.attribution, maxZoom: 22, maxNativeZoom: data.basemap.max_zoom,
        className: "basemap", subdomains: "abc",
        referrerPolicy: "strict-origin-when-cross-origin",  // OSM's tile policy wants the page's origin
      }).addTo(map);
    }
    if (data.roads_attribution) map.attributionControl.addAttribution(data.roads_attribution);
    return map;
  }

  function osmLayer(map, osm, colour) {
    return L.geoJSON(osm, {
      interactive: false,
      style: () => ({ className: "osm-road", color: colour, weight: 4, opacity: 1 }),
    }).addTo(map);
  }

  function aoiLayer(map, geometry) {
    return L.geoJSON(geometry, {
      interactive: false, style: { className: "aoi", color: "#222", weight: 1.5, dashArray: "6 4", fill: false },
    }).addTo(map);
  }

  function josmBase(data) {
    return (params.get("josm") || data.josm).replace(/\/+$/, "");
  }

  function josmUrl(data, bounds) {
    // load_and_zoom: JOSM downloads OSM in this box and zooms to it (bounds padded to >= ~50 m)
    const b = bounds.pad(0.25), minSpan = 0.0005;
    const c = b.getCenter(), h = Math.max(b.getNorth() - b.getSouth(), minSpan) / 2;
    const w = Math.max(b.getEast() - b.getWest(), minSpan) / 2;
    return `${josmBase(data)}/load_and_zoom?left=${(c.lng - w).toFixed(7)}&right=${(c.lng + w).toFixed(7)}` +
      `&top=${(c.lat + h).toFixed(7)}&bottom=${(c.lat - h).toFixed(7)}`;
  }

  function idUrl(lat, lon, zoom) {
    return `https://www.openstreetmap.org/edit?editor=id#map=${zoom}/${lat.toFixed(6)}/${lon.toFixed(6)}`;
  }

  function askJosm(url, label, say) {
    say(`${label}: asking JOSM...`);
    fetch(url).then(r => say(r.ok ? `${label}: loaded in JOSM` : `${label}: JOSM answered ${r.status}`))
      .catch(() => say(`${label}: JOSM not reachable at ${url.split("/load_and_zoom")[0]} (is remote control enabled?)`));
  }

  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  function link(href, text, cls) {
    return el("a", text, { href: href, target: "_blank", rel: "noopener", class: cls || "" });
  }

  // A popup body: a heading, a table of [label, value] rows, then the JOSM and iD links.
  function popup(heading, rows, josm, id, label) {
    const box = el("div", null, { class: "osmgap-popup" });
    box.appendChild(el("b", heading));
    const table = el("table");
    for (const [k, v] of rows) {
      if (v === undefined || v === null || v === "") continue;
      const tr = table.insertRow();
      tr.appendChild(el("th", k));
      tr.appendChild(el("td", typeof v === "object" ? JSON.stringify(v) : v));
    }
    box.appendChild(table);
    const status = el("div", null, { class: "josm-status" });
    const toJosm = link(josm, "open in JOSM", "josm-link");
    toJosm.addEventListener("click", ev => { ev.preventDefault(); askJosm(josm, label, t => { status.textContent = t; }); });
    box.append(toJosm, " · ", link(id, "open in iD", "id-link"), status);
    return box;
  }

  function fmt(value, digits) {
    return typeof value === "number" ? value.toFixed(digits) : value;
  }

  return { newMap, osmLayer, aoiLayer, josmBase, josmUrl, idUrl, askJosm, el, link, popup, fmt };
})();
