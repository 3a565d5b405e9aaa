// The dry run's clues on a time axis: one bar per clue from its start to its end (or now).
(function () {
  var el = document.getElementById("dry-chart");
  var spans = JSON.parse(document.getElementById("dry-spans").textContent);
  var fmt = new Intl.DateTimeFormat("zh-CN", {timeZone: document.body.dataset.zone, hour12: false,
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit"});
  var chart = echarts.init(el);
  chart.setOption({
    animation: false,
    grid: {left: 48, right: 24, top: 16, bottom: 60},
    xAxis: {type: "time", min: el.dataset.since, max: el.dataset.until, axisLabel: {hideOverlap: true, formatter: function (v) { return fmt.format(new Date(v)); }}},
    yAxis: {type: "value", minInterval: 1, name: "#"},
    dataZoom: [{type: "inside"}, {type: "slider"}],
    series: [{type: "custom", renderItem: function (params, api) {
      var a = api.coord([api.value(0), params.dataIndex + 1]), b = api.coord([api.value(1), params.dataIndex + 1]);
      return {type: "rect", shape: {x: a[0], y: a[1] - 4, width: Math.max(b[0] - a[0], 3), height: 8}, style: {fill: "#b3261e"}};
    }, encode: {x: [0, 1]}, data: spans.map(function (s) { return [s[0], s[1], s[2]]; })}]
  });
  el.dataset.rendered = String(spans.length);
})();
