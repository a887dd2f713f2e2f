// The Prometheus text renderer: golden text per kind, escaping, special floats, invalid input
// made valid, merging, order; and Prometheus's own parser (promtool) reading what we write.
#include "metrics/prometheus_text.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include <gtest/gtest.h>

#include "metrics/registry.h"

namespace ea {
namespace {

MetricFamily family(std::string name, MetricKind kind, std::vector<MetricSeries> series, std::string help = "Help.") {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.kind = kind;
  f.series = std::move(series);
  return f;
}

MetricSeries value_series(LabelSet labels, double value) {
  MetricSeries s;
  s.labels = std::move(labels);
  s.value = value;
  return s;
}

MetricSeries histogram_series(LabelSet labels, std::vector<double> bounds, std::vector<uint64_t> counts, double sum,
                              uint64_t count) {
  MetricSeries s;
  s.labels = std::move(labels);
  s.histogram = {std::move(bounds), std::move(counts), sum, count};
  return s;
}

std::string render(std::vector<MetricFamily> families) {
  MetricsSnapshot snapshot;
  snapshot.families = std::move(families);
  return render_prometheus_text(snapshot);
}

std::string float_text(double value) {
  std::string out;
  append_prometheus_float(out, value);
  return out;
}

std::string label_text(std::string_view value) {
  std::string out;
  append_prometheus_label_value(out, value);
  return out;
}

TEST(PrometheusText, CounterGetsTotalSuffix) {
  EXPECT_EQ(render({family("ebpf_agent_records", MetricKind::Counter,
                           {value_series({{"spec", "a"}}, 3), value_series({{"spec", "b"}}, 0)}, "Records read.")}),
            "# HELP ebpf_agent_records_total Records read.\n"
            "# TYPE ebpf_agent_records_total counter\n"
            "ebpf_agent_records_total{spec=\"a\"} 3\n"
            "ebpf_agent_records_total{spec=\"b\"} 0\n");
}

TEST(PrometheusText, CounterAlreadyEndingInTotalIsNotDoubled) {
  EXPECT_EQ(render({family("x_total", MetricKind::Counter, {value_series({}, 1)})}),
            "# HELP x_total Help.\n# TYPE x_total counter\nx_total 1\n");
}

TEST(PrometheusText, GaugeAsIs) {
  EXPECT_EQ(render({family("process_resident_memory_bytes", MetricKind::Gauge, {value_series({}, 1.5e9)}, "RSS.")}),
            "# HELP process_resident_memory_bytes RSS.\n"
            "# TYPE process_resident_memory_bytes gauge\n"
            "process_resident_memory_bytes 1500000000\n");
}

TEST(PrometheusText, HistogramIsCumulativeWithInfSumAndCount) {
  EXPECT_EQ(render({family("http_server_request_duration_seconds", MetricKind::Histogram,
                           {histogram_series({{"http_route", "/a"}, {"http_response_status_code", "200"}},
                                             {0.005, 0.1, 1}, {1, 2, 0, 3}, 12.5, 6),
                            histogram_series({}, {0.005, 0.1, 1}, {0, 0, 0, 0}, 0, 0)},
                           "Duration of HTTP server requests.")}),
            "# HELP http_server_request_duration_seconds Duration of HTTP server requests.\n"
            "# TYPE http_server_request_duration_seconds histogram\n"
            "http_server_request_duration_seconds_bucket{http_response_status_code=\"200\",http_route=\"/a\",le=\"0.005\"} 1\n"
            "http_server_request_duration_seconds_bucket{http_response_status_code=\"200\",http_route=\"/a\",le=\"0.1\"} 3\n"
            "http_server_request_duration_seconds_bucket{http_response_status_code=\"200\",http_route=\"/a\",le=\"1\"} 3\n"
            "http_server_request_duration_seconds_bucket{http_response_status_code=\"200\",http_route=\"/a\",le=\"+Inf\"} 6\n"
            "http_server_request_duration_seconds_sum{http_response_status_code=\"200\",http_route=\"/a\"} 12.5\n"
            "http_server_request_duration_seconds_count{http_response_status_code=\"200\",http_route=\"/a\"} 6\n"
            "http_server_request_duration_seconds_bucket{le=\"0.005\"} 0\n"
            "http_server_request_duration_seconds_bucket{le=\"0.1\"} 0\n"
            "http_server_request_duration_seconds_bucket{le=\"1\"} 0\n"
            "http_server_request_duration_seconds_bucket{le=\"+Inf\"} 0\n"
            "http_server_request_duration_seconds_sum 0\n"
            "http_server_request_duration_seconds_count 0\n");
}

TEST(PrometheusText, HistogramBadBoundsAreSkippedAndTheirCountsCarried) {
  // 0.5 after 1 (not ascending), NaN and an explicit +Inf cannot be buckets.
  std::string text = render({family("h", MetricKind::Histogram,
                                    {histogram_series({}, {1, 0.5, std::nan(""), 2, INFINITY}, {1, 1, 1, 1, 1, 1}, 3,
                                                      6)})});
  EXPECT_EQ(text,
            "# HELP h Help.\n# TYPE h histogram\n"
            "h_bucket{le=\"1\"} 1\n"
            "h_bucket{le=\"2\"} 4\n"
            "h_bucket{le=\"+Inf\"} 6\n"
            "h_sum 3\n"
            "h_count 6\n");
}

TEST(PrometheusText, HistogramCountEqualsInfBucket) {
  // A racy read can see more in count than in the buckets; Prometheus wants them equal.
  std::string text = render({family("h", MetricKind::Histogram, {histogram_series({}, {1}, {2, 1}, 3, 5)})});
  EXPECT_NE(text.find("h_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_count 3\n"), std::string::npos) << text;
  // Without bucket counts at all, the count is all there is.
  text = render({family("h", MetricKind::Histogram, {histogram_series({}, {}, {}, 3, 5)})});
  EXPECT_EQ(text, "# HELP h Help.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 5\nh_sum 3\nh_count 5\n");
}

TEST(PrometheusText, HistogramOwnLeLabelIsRenamed) {
  std::string text = render({family("h", MetricKind::Histogram, {histogram_series({{"le", "x"}}, {1}, {1, 0}, 1, 1)})});
  EXPECT_NE(text.find("h_bucket{exported_le=\"x\",le=\"1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_count{exported_le=\"x\"} 1\n"), std::string::npos) << text;
}

TEST(PrometheusText, LabelValueEscaping) {
  EXPECT_EQ(label_text("plain"), "plain");
  EXPECT_EQ(label_text("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(label_text(""), "");
  EXPECT_EQ(render({family("g", MetricKind::Gauge, {value_series({{"path", "C:\\x \"y\"\n"}}, 1)})}),
            "# HELP g Help.\n# TYPE g gauge\ng{path=\"C:\\\\x \\\"y\\\"\\n\"} 1\n");
}

TEST(PrometheusText, HelpEscapesBackslashAndNewlineButNotQuotes) {
  EXPECT_EQ(render({family("g", MetricKind::Gauge, {value_series({}, 1)}, "a \"quoted\" \\ path\nsecond line")}),
            "# HELP g a \"quoted\" \\\\ path\\nsecond line\n# TYPE g gauge\ng 1\n");
}

TEST(PrometheusText, InvalidUtf8IsReplacedValidIsKept) {
  EXPECT_EQ(label_text("h\xC3\xA9llo \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80"),
            "h\xC3\xA9llo \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80");
  const std::string replacement = "\xEF\xBF\xBD";
  EXPECT_EQ(label_text("a\xFF" "b"), "a" + replacement + "b");
  EXPECT_EQ(label_text("\xC0\xAF"), replacement + replacement);            // overlong '/'
  EXPECT_EQ(label_text("\xED\xA0\x80"), replacement + replacement + replacement);  // surrogate
  EXPECT_EQ(label_text("\xF4\x90\x80\x80"), replacement + replacement + replacement + replacement);  // > U+10FFFF
  EXPECT_EQ(label_text("end\xE6\x97"), "end" + replacement + replacement);  // truncated
  EXPECT_EQ(label_text(std::string("nul\0x", 5)), std::string("nul\0x", 5));
}

TEST(PrometheusText, SpecialAndOrdinaryFloats) {
  EXPECT_EQ(float_text(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(float_text(INFINITY), "+Inf");
  EXPECT_EQ(float_text(-INFINITY), "-Inf");
  EXPECT_EQ(float_text(0), "0");
  EXPECT_EQ(float_text(-0.0), "0");
  EXPECT_EQ(float_text(-3), "-3");
  EXPECT_EQ(float_text(1e6), "1000000");
  EXPECT_EQ(float_text(123456789012345), "123456789012345");
  EXPECT_EQ(float_text(1e15), "1e+15");
  EXPECT_EQ(float_text(0.1), "0.1");
  EXPECT_EQ(float_text(1.5), "1.5");
  EXPECT_EQ(float_text(1e-7), "1e-07");
  EXPECT_EQ(float_text(std::numeric_limits<double>::max()), "1.7976931348623157e+308");
  EXPECT_EQ(std::stod(float_text(0.1 + 0.2)), 0.1 + 0.2);  // round-trips exactly
  EXPECT_EQ(render({family("g", MetricKind::Gauge,
                           {value_series({{"v", "nan"}}, NAN), value_series({{"v", "inf"}}, INFINITY),
                            value_series({{"v", "ninf"}}, -INFINITY)})}),
            "# HELP g Help.\n# TYPE g gauge\ng{v=\"nan\"} NaN\ng{v=\"inf\"} +Inf\ng{v=\"ninf\"} -Inf\n");
}

TEST(PrometheusText, OverflowSeriesFromTheRegistry) {
  MetricRegistry registry(2);
  auto metric = registry.metric({"http_server_requests", "Requests.", "", MetricKind::Counter, "", {"http_route"}, {}, 0});
  ASSERT_TRUE(metric.has_value());
  for (std::string_view route : {"/a", "/b", "/c", "/d"}) (*metric)->with({route}).add(1);
  std::string text = render_prometheus_text(registry.collect());
  EXPECT_NE(text.find("# TYPE http_server_requests_total counter\n"
                      "http_server_requests_total{http_route=\"/a\"} 1\n"
                      "http_server_requests_total{http_route=\"/b\"} 1\n"
                      "http_server_requests_total{otel_metric_overflow=\"true\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ebpf_agent_metric_overflow_updates_total{metric=\"http_server_requests\"} 2\n"),
            std::string::npos)
      << text;
}

TEST(PrometheusText, SameNameSameKindMergedDifferentKindSkipped) {
  MetricsSnapshot snapshot;
  snapshot.families = {family("a", MetricKind::Gauge, {value_series({{"spec", "one"}}, 1)}, "First help."),
                       family("a", MetricKind::Gauge, {value_series({{"spec", "two"}}, 2)}, "Second help."),
                       family("a", MetricKind::Histogram, {histogram_series({}, {1}, {1, 0}, 1, 1)})};
  std::string text;
  PrometheusRenderStats stats = render_prometheus_text(snapshot, text);
  EXPECT_EQ(text, "# HELP a First help.\n# TYPE a gauge\na{spec=\"one\"} 1\na{spec=\"two\"} 2\n");
  EXPECT_EQ(stats.families, 1u);
  EXPECT_EQ(stats.samples, 2u);
  EXPECT_EQ(stats.skipped_families, 1u);
}

TEST(PrometheusText, CounterAndGaugeCollidingAfterSuffixAreOneFamily) {
  MetricsSnapshot snapshot;
  snapshot.families = {family("x", MetricKind::Counter, {value_series({}, 1)}),
                       family("x_total", MetricKind::Gauge, {value_series({}, 2)})};
  std::string text;
  PrometheusRenderStats stats = render_prometheus_text(snapshot, text);
  EXPECT_EQ(text, "# HELP x_total Help.\n# TYPE x_total counter\nx_total 1\n");
  EXPECT_EQ(stats.skipped_families, 1u);
}

TEST(PrometheusText, FamiliesSortedByNameAndOutputStable) {
  std::vector<MetricFamily> families = {family("zeta", MetricKind::Gauge, {value_series({}, 1)}),
                                        family("alpha", MetricKind::Gauge, {value_series({}, 2)}),
                                        family("mid", MetricKind::Counter, {value_series({}, 3)})};
  std::string first = render(families);
  EXPECT_EQ(first,
            "# HELP alpha Help.\n# TYPE alpha gauge\nalpha 2\n"
            "# HELP mid_total Help.\n# TYPE mid_total counter\nmid_total 3\n"
            "# HELP zeta Help.\n# TYPE zeta gauge\nzeta 1\n");
  EXPECT_EQ(render(families), first);
}

TEST(PrometheusText, InvalidNamesAndLabelSetsAreMadeValid) {
  // Straight from a producer that skipped make_labels: OpenTelemetry dots, unsorted, a duplicate.
  std::string text = render({family("http.server.active_requests", MetricKind::Gauge,
                                    {value_series({{"url.scheme", "http"}, {"a", "1"}, {"a", "2"}, {"9x", "y"}}, 4)},
                                    "")});
  EXPECT_EQ(text,
            "# TYPE http_server_active_requests gauge\n"
            "http_server_active_requests{_9x=\"y\",a=\"2\",url_scheme=\"http\"} 4\n");
}

TEST(PrometheusText, EmptyFamiliesAndHelpAreLeftOut) {
  EXPECT_EQ(render({family("empty", MetricKind::Counter, {}), family("g", MetricKind::Gauge, {value_series({}, 1)}, "")}),
            "# TYPE g gauge\ng 1\n");
}

TEST(PrometheusText, AppendsToWhatIsThere) {
  MetricsSnapshot snapshot;
  snapshot.families = {family("g", MetricKind::Gauge, {value_series({}, 1)}, "")};
  std::string out = "prefix\n";
  render_prometheus_text(snapshot, out);
  EXPECT_EQ(out, "prefix\n# TYPE g gauge\ng 1\n");
}

// Prometheus's own parser and linter on a snapshot with every kind and every hard case.
TEST(PrometheusText, PromtoolAcceptsTheOutput) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) GTEST_SKIP() << "promtool not installed";
  std::string text = render(
      {family("ebpf_agent_records", MetricKind::Counter,
              {value_series({{"channel", "c\"1\n"}, {"comm", "a\xFF\\b"}}, 3), value_series({}, 0)}),
       family("ebpf_agent_queue_depth", MetricKind::Gauge,
              {value_series({{"v", "nan"}}, NAN), value_series({{"v", "inf"}}, INFINITY),
               value_series({{"v", "ninf"}}, -INFINITY), value_series({{"v", "tiny"}}, 1e-300)}),
       family("http_server_request_duration_seconds", MetricKind::Histogram,
              {histogram_series({{"le", "own"}, {"http_route", "/x"}}, {0.005, 0.01, 2.5}, {1, 2, 3, 4}, 9.75, 10),
               histogram_series({{kOverflowLabel, "true"}}, {0.005, 0.01, 2.5}, {0, 0, 0, 1}, 100, 1)})});
  std::string path = std::filesystem::temp_directory_path() / ("ea_prom_" + std::to_string(getpid()) + ".txt");
  std::ofstream(path) << text;
  int status = std::system(("promtool check metrics < " + path + " > " + path + ".out 2>&1").c_str());
  std::ifstream report_file(path + ".out");
  std::string report((std::istreambuf_iterator<char>(report_file)), {});
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".out");
  EXPECT_EQ(status, 0) << report << "\n" << text;
}

}  // namespace
}  // namespace ea
