// Readings charts: a clue's readings around it (its span, trigger points, valid-data ratio)
// or a subject's recent hourly means; both with limit lines and zoom (ECharts).
(function () {
  // Axis times in the workbench's zone (the setting), not the browser's, 24-hour.
  var zone = document.body.dataset.zone;
  var fmtTime = new Intl.DateTimeFormat("zh-CN", {timeZone: zone, hour12: false,
    hour: "2-digit", minute: "2-digit", second: "2-digit"});
  // data-axis="day": a week of hourly means needs the date on the axis.
  var fmtDay = new Intl.DateTimeFormat("zh-CN", {timeZone: zone, hour12: false,
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit"});
  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var fmt = el.dataset.axis === "day" ? fmtDay : fmtTime;
    // The alert page sends its charts' data with it; other pages fetch theirs.
    var data = el.dataset.chartData ? Promise.resolve(JSON.parse(el.dataset.chartData)) :
      fetch(el.dataset.chart, {credentials: "same-origin"}).then(function (r) { return r.json(); });
    data.then(function (d) {
      var chart = echarts.init(el);
      var series = d.series.map(function (s) {
        // A line through a handful of points (a new device's first hours) needs its dots.
        return {name: s.name, type: "line", showSymbol: s.data.length < 30, data: s.data};
      });
      if (!series.length) series.push({name: "", type: "line", data: []});
      var first = series[0];
      if (d.span) first.markArea = {itemStyle: {color: "rgba(179,38,30,0.10)"}, data: [[{name: el.dataset.spanText, xAxis: d.span[0]}, {xAxis: d.span[1]}]]};
      var limits = d.limits || (d.limit !== null ? [{value: d.limit}] : []);
      if (limits.length) first.markLine = {symbol: "none", lineStyle: {color: "#b3261e", type: "dashed"}, data: limits.map(function (l) {
        return {name: el.dataset.limitText, yAxis: l.value, label: {formatter: el.dataset.limitText + " {c}"}};
      })};
      if (d.triggers && d.triggers.length) series.push({name: "trigger", type: "scatter", symbolSize: 7, itemStyle: {color: "#b3261e"}, data: d.triggers});
      chart.setOption({
        animation: false,
        tooltip: {trigger: "axis", axisPointer: {label: {formatter: function (p) { return fmt.format(new Date(p.value)); }}}},
        grid: {left: 48, right: 64, top: 28, bottom: 60},
        xAxis: {type: "time", axisLabel: {hideOverlap: true, formatter: function (v) { return fmt.format(new Date(v)); }}},
        // Keep the limit lines in view even when every reading is far below them.
        yAxis: {type: "value", scale: true,
          max: function (v) { return limits.reduce(function (m, l) { return Math.max(m, l.value); }, v.max); },
          min: function (v) { return limits.reduce(function (m, l) { return Math.min(m, l.value); }, v.min); }},
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
