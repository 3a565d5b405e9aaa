// Each clue's chart: readings around it, the limit line, the clue's span, zoom (ECharts).
(function () {
  // Axis times in the workbench's zone (the setting), not the browser's, 24-hour.
  var fmt = new Intl.DateTimeFormat("zh-CN", {timeZone: document.body.dataset.zone, hour12: false,
    hour: "2-digit", minute: "2-digit", second: "2-digit"});
  document.querySelectorAll("[data-chart]").forEach(function (el) {
    fetch(el.dataset.chart, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (d) {
      var chart = echarts.init(el);
      var series = d.series.map(function (s) {
        return {name: s.name, type: "line", showSymbol: false, data: s.data};
      });
      if (!series.length) series.push({name: "", type: "line", data: []});
      var first = series[0];
      first.markArea = {itemStyle: {color: "rgba(179,38,30,0.10)"}, data: [[{name: el.dataset.spanText, xAxis: d.span[0]}, {xAxis: d.span[1]}]]};
      if (d.limit !== null) first.markLine = {symbol: "none", lineStyle: {color: "#b3261e", type: "dashed"}, data: [{name: el.dataset.limitText, yAxis: d.limit, label: {formatter: el.dataset.limitText + " {c}"}}]};
      if (d.triggers.length) series.push({name: "trigger", type: "scatter", symbolSize: 7, itemStyle: {color: "#b3261e"}, data: d.triggers});
      chart.setOption({
        animation: false,
        tooltip: {trigger: "axis", axisPointer: {label: {formatter: function (p) { return fmt.format(new Date(p.value)); }}}},
        grid: {left: 48, right: 64, top: 28, bottom: 60},
        xAxis: {type: "time", axisLabel: {hideOverlap: true, formatter: function (v) { return fmt.format(new Date(v)); }}},
        yAxis: {type: "value", scale: true},
        dataZoom: [{type: "inside"}, {type: "slider"}],
        series: series
      });
      el.dataset.rendered = String(d.series.reduce(function (n, s) { return n + s.data.length; }, 0));
      if (d.valid_ratio !== null) {
        el.parentNode.querySelector(".ratio").textContent = el.dataset.ratioText + ": " + Math.round(d.valid_ratio * 100) + "%" +
          (d.min_valid_ratio !== null ? " (≥ " + Math.round(d.min_valid_ratio * 100) + "%)" : "");
      }
      window.addEventListener("resize", function () { chart.resize(); });
    });
  });
})();
