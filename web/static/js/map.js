// Leaflet map of subjects with open alerts; the tile layer only when a tile server is set.
(function () {
  var el = document.getElementById("map");
  var points = JSON.parse(document.getElementById("map-points").textContent).filter(function (p) { return p.lat !== null; });
  var colours = {critical: "#b3261e", major: "#e8710a", warning: "#d4a600", info: "#1f6fd1"};
  var map = L.map(el, {zoomControl: true});
  if (el.dataset.tiles) L.tileLayer(el.dataset.tiles, {attribution: el.dataset.attribution, maxZoom: 19}).addTo(map);
  var layer = L.featureGroup().addTo(map);
  points.forEach(function (p) {
    L.circleMarker([p.lat, p.lon], {radius: 8 + Math.min(p.open, 10), color: colours[p.worst], fillOpacity: 0.7})
      .bindPopup('<a href="/subjects/' + p.code + '">' + p.name.replace(/</g, "&lt;") + "</a> (" + p.open + ")")
      .addTo(layer);
  });
  if (points.length) map.fitBounds(layer.getBounds().pad(0.3), {maxZoom: 15}); else map.setView([31.3, 120.6], 9);
  el.dataset.markers = String(points.length);
})();
