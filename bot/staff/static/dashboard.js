// The operations dashboard's charts: ECharts (vendored) drawn from the rows the page also shows
// as tables (#dashboard-data). "表格" swaps a chart for its table; the CSV link downloads it.
"use strict";

(function () {
  const specs = JSON.parse(document.getElementById("dashboard-data").textContent || "[]");
  const charts = [];
  const big = window.matchMedia("(min-width: 1800px)");

  function option(spec) {
    const font = big.matches ? 15 : 12;
    const categories = spec.rows.map(function (r) { return String(r[0]); });
    const suffix = spec.percent ? "%" : "";
    if (spec.kind === "pie") {
      return {
        textStyle: { fontSize: font },
        tooltip: { trigger: "item", formatter: "{b}: {c} ({d}%)" },
        legend: { bottom: 0, textStyle: { fontSize: font } },
        series: [{
          type: "pie", radius: ["35%", "65%"], label: { fontSize: font },
          data: spec.rows.map(function (r) { return { name: String(r[0]), value: r[spec.series[0]] }; }),
        }],
      };
    }
    return {
      textStyle: { fontSize: font },
      grid: { left: 8, right: 16, top: spec.series.length > 1 ? 32 : 16, bottom: 8, containLabel: true },
      tooltip: { trigger: "axis", valueFormatter: function (v) { return v + suffix; } },
      legend: spec.series.length > 1 ? { top: 0, textStyle: { fontSize: font } } : undefined,
      xAxis: { type: "category", data: categories, axisLabel: { fontSize: font, hideOverlap: true } },
      yAxis: { type: "value", minInterval: 1, axisLabel: { fontSize: font, formatter: "{value}" + suffix } },
      series: spec.series.map(function (column) {
        return {
          name: spec.columns[column], type: spec.kind, smooth: false, showSymbol: spec.rows.length < 40,
          data: spec.rows.map(function (r) { return r[column]; }),
        };
      }),
    };
  }

  specs.forEach(function (spec) {
    const node = document.querySelector('.board-chart__canvas[data-chart="' + spec.id + '"]');
    if (!node || !window.echarts) return;
    const chart = window.echarts.init(node, null, { renderer: "canvas" });
    chart.setOption(option(spec));
    charts.push({ chart: chart, spec: spec });
  });

  function redraw() {
    charts.forEach(function (c) { c.chart.setOption(option(c.spec)); c.chart.resize(); });
  }
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.chart.resize(); }); });
  big.addEventListener("change", redraw);

  document.querySelectorAll(".board-toggle").forEach(function (button) {
    button.addEventListener("click", function () {
      const id = button.dataset.chart;
      const table = document.getElementById("table-" + id);
      const canvas = document.querySelector('.board-chart__canvas[data-chart="' + id + '"]');
      const showTable = table.hidden;
      table.hidden = !showTable;
      canvas.hidden = showTable;
      button.setAttribute("aria-pressed", showTable ? "true" : "false");
      if (!showTable) charts.forEach(function (c) { if (c.spec.id === id) c.chart.resize(); });
    });
  });
})();
