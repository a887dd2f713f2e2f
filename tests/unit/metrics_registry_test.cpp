#include <gtest/gtest.h>

#include <thread>

#include "metrics/registry.h"

namespace ea {
namespace {

TEST(MetricLabels, SortedAndRenamedForPrometheus) {
  LabelSet labels = make_labels({{"http.route", "/a"}, {"b", "1"}, {"a", "2"}, {"a", "3"}});
  ASSERT_EQ(labels.size(), 3u);
  EXPECT_EQ(labels[0], (std::pair<std::string, std::string>{"a", "3"}));  // the later duplicate wins
  EXPECT_EQ(labels[1].first, "b");
  EXPECT_EQ(labels[2].first, "http_route");
  EXPECT_EQ(prometheus_name("9lives"), "_9lives");
  EXPECT_TRUE(valid_metric_name("ns:metric_total"));
  EXPECT_FALSE(valid_label_name("a:b"));
  EXPECT_FALSE(valid_metric_name(""));
}

TEST(MetricRegistry, CountersGaugesAndHistograms) {
  MetricRegistry registry;
  auto requests = registry.metric({.name = "requests", .kind = MetricKind::Counter, .label_names = {"method"}});
  ASSERT_TRUE(requests) << requests.error().message;
  (*requests)->with({"GET"}).add(2);
  (*requests)->with({"GET"}).add(1);
  (*requests)->with({"POST"}).add(5);
  auto latency = registry.metric(
      {.name = "latency_seconds", .kind = MetricKind::Histogram, .label_names = {}, .bounds = {0.1, 1, 10}});
  ASSERT_TRUE(latency);
  for (double v : {0.05, 0.1, 0.5, 5.0, 50.0}) (*latency)->observe({}, v);

  MetricsSnapshot snapshot = registry.collect();
  EXPECT_GT(snapshot.time_ns, 0u);
  const MetricFamily* r = snapshot.find("requests");
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->series.size(), 2u);
  EXPECT_EQ(r->series[0].labels, (LabelSet{{"method", "GET"}}));
  EXPECT_EQ(r->series[0].value, 3);
  EXPECT_EQ(r->series[1].value, 5);
  const MetricFamily* l = snapshot.find("latency_seconds");
  ASSERT_NE(l, nullptr);
  const HistogramData& h = l->series.at(0).histogram;
  EXPECT_EQ(h.bounds, (std::vector<double>{0.1, 1, 10}));
  EXPECT_EQ(h.counts, (std::vector<uint64_t>{2, 1, 1, 1}));  // le=0.1 is inclusive
  EXPECT_EQ(h.count, 5u);
  EXPECT_DOUBLE_EQ(h.sum, 55.65);
}

TEST(MetricRegistry, SameNameSameShapeIsShared_DifferentShapeIsAnError) {
  MetricRegistry registry;
  auto a = registry.metric({.name = "x", .kind = MetricKind::Counter, .label_names = {"l"}});
  auto b = registry.metric({.name = "x", .kind = MetricKind::Counter, .label_names = {"l"}});
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->get(), b->get());
  auto c = registry.metric({.name = "x", .kind = MetricKind::Gauge, .label_names = {"l"}});
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("already registered as a counter"), std::string::npos) << c.error().message;
  EXPECT_FALSE(registry.metric({.name = "bad name"}));
  EXPECT_FALSE(registry.metric({.name = "h", .kind = MetricKind::Histogram, .bounds = {2, 1}}));
  EXPECT_FALSE(registry.metric({.name = "l", .label_names = {"__reserved"}}));
}

TEST(MetricRegistry, CardinalityCapFoldsIntoOverflowSeriesAndCountsIt) {
  MetricRegistry registry(/*default_max_series=*/3);
  auto metric = registry.metric({.name = "by_path", .kind = MetricKind::Counter, .label_names = {"path"}});
  ASSERT_TRUE(metric);
  for (int i = 0; i < 10; ++i) (*metric)->with({std::to_string(i)}).add(1);
  (*metric)->with({"0"}).add(1);  // known series still count on their own
  MetricsSnapshot snapshot = registry.collect();
  const MetricFamily* family = snapshot.find("by_path");
  ASSERT_NE(family, nullptr);
  ASSERT_EQ(family->series.size(), 4u);
  EXPECT_EQ(family->series[0].value, 2);
  EXPECT_EQ(family->series[3].labels, (LabelSet{{kOverflowLabel, "true"}}));
  EXPECT_EQ(family->series[3].value, 7);
  const MetricFamily* folded = snapshot.find("ebpf_agent_metric_overflow_updates");
  ASSERT_NE(folded, nullptr);
  EXPECT_EQ(folded->series.at(0).labels, (LabelSet{{"metric", "by_path"}}));
  EXPECT_EQ(folded->series.at(0).value, 7);
}

TEST(MetricRegistry, CollectorsAreCappedMergedAndRemovedWithTheirSpec) {
  MetricRegistry registry(2);
  auto produce = [](std::vector<MetricFamily>& out) {
    MetricFamily family{"map_counts", "", "", MetricKind::Counter, "", {}};
    for (int i = 0; i < 5; ++i) family.series.push_back({{{"k", std::to_string(i)}}, double(i + 1), {}});
    out.push_back(std::move(family));
  };
  registry.add_collector("spec_a", produce);
  uint64_t b = registry.add_collector("spec_b", produce);
  MetricsSnapshot snapshot = registry.collect();
  const MetricFamily* family = snapshot.find("map_counts");
  ASSERT_NE(family, nullptr);
  // Two collectors' families of one name become one family: 2 kept + overflow each.
  EXPECT_EQ(family->series.size(), 6u);
  EXPECT_EQ(family->series[2].value, 3 + 4 + 5);
  EXPECT_EQ(family->spec, "");  // two owners: each series says which
  EXPECT_EQ(family->series[0].labels, (LabelSet{{"k", "0"}, {"spec", "spec_a"}}));
  EXPECT_EQ(family->series[3].labels, (LabelSet{{"k", "0"}, {"spec", "spec_b"}}));
  const MetricFamily* folded = snapshot.find("ebpf_agent_metric_overflow_series");
  ASSERT_NE(folded, nullptr);
  EXPECT_EQ(folded->series.at(0).value, 3);

  registry.remove_collector(b);
  registry.remove_spec("spec_a");
  EXPECT_EQ(registry.collect().find("map_counts"), nullptr);
}

TEST(MetricRegistry, TwoSpecsOneNameStayApartAndDeletingOneKeepsTheOther) {
  MetricRegistry registry;
  auto a = registry.metric({.name = "kills", .kind = MetricKind::Counter, .spec = "a", .label_names = {"comm"}});
  auto b = registry.metric({.name = "kills", .kind = MetricKind::Counter, .spec = "b", .label_names = {"comm"}});
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->get(), b->get());
  (*a)->with({"java"}).add(1);
  (*b)->with({"java"}).add(2);
  MetricsSnapshot first = registry.collect();
  const MetricFamily* both = first.find("kills");
  ASSERT_NE(both, nullptr);
  ASSERT_EQ(both->series.size(), 2u);  // equal label sets kept apart by spec
  EXPECT_EQ(both->series[0].labels, (LabelSet{{"comm", "java"}, {"spec", "a"}}));
  EXPECT_EQ(both->series[1].labels, (LabelSet{{"comm", "java"}, {"spec", "b"}}));
  EXPECT_EQ(both->series[1].value, 2);

  registry.remove_spec("a");
  (*b)->with({"java"}).add(1);
  MetricsSnapshot second = registry.collect();
  const MetricFamily* left = second.find("kills");
  ASSERT_NE(left, nullptr);
  ASSERT_EQ(left->series.size(), 1u);
  EXPECT_EQ(left->series[0].labels, (LabelSet{{"comm", "java"}}));  // one producer: no spec label
  EXPECT_EQ(left->series[0].value, 3);
  EXPECT_EQ(left->spec, "b");
}

TEST(MetricRegistry, ConcurrentUpdatesAreNotLost) {
  MetricRegistry registry;
  auto metric = registry.metric({.name = "hits", .kind = MetricKind::Counter, .label_names = {"t"}});
  ASSERT_TRUE(metric);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) (*metric)->with({i % 2 ? "odd" : "even"}).add(1);
    });
  for (auto& thread : threads) thread.join();
  MetricsSnapshot snapshot = registry.collect();
  const MetricFamily* family = snapshot.find("hits");
  ASSERT_NE(family, nullptr);
  double total = 0;
  for (const auto& series : family->series) total += series.value;
  EXPECT_EQ(total, 80000);
}

TEST(FoldOverCap, HistogramsSumBucketwise) {
  MetricFamily family{"h", "", "", MetricKind::Histogram, "", {}};
  for (int i = 0; i < 3; ++i) family.series.push_back({{{"k", std::to_string(i)}}, 0, {{1}, {1, 2}, 3.0, 3}});
  EXPECT_EQ(fold_over_cap(family, 1), 2u);
  ASSERT_EQ(family.series.size(), 2u);
  EXPECT_EQ(family.series[1].histogram.counts, (std::vector<uint64_t>{2, 4}));
  EXPECT_EQ(family.series[1].histogram.count, 6u);
}

}  // namespace
}  // namespace ea
