#include <gtest/gtest.h>

#include <cerrno>

#include "loader/plugin_metrics.h"

namespace ea {
namespace {

TEST(PluginMetrics, DeclaredMetricsLandInTheRegistryOwnedByTheSpec) {
  MetricRegistry registry;
  PluginMetrics host(&registry, "oom");
  const ea_metrics_api* api = host.api();
  ASSERT_EQ(api->size, sizeof(ea_metrics_api));
  const char* labels[] = {"comm"};
  ea_metric_desc counter{.name = "oom_kills", .help = "kills", .unit = nullptr, .kind = EA_METRIC_COUNTER,
                         .label_names = labels, .label_count = 1, .bounds = nullptr, .bound_count = 0};
  char err[256] = "";
  ea_metric* kills = api->declare(api->host, &counter, err, sizeof(err));
  ASSERT_NE(kills, nullptr) << err;
  const char* victim[] = {"stress"};
  EXPECT_EQ(api->counter_add(kills, victim, 1, 1), 0);
  EXPECT_EQ(api->counter_add(kills, victim, 1, 2), 0);

  const double bounds[] = {0.001, 0.01, 0.1};
  ea_metric_desc histogram{.name = "alloc_latency_seconds", .help = nullptr, .unit = "seconds",
                           .kind = EA_METRIC_HISTOGRAM, .label_names = nullptr, .label_count = 0,
                           .bounds = bounds, .bound_count = 3};
  ea_metric* latency = api->declare(api->host, &histogram, err, sizeof(err));
  ASSERT_NE(latency, nullptr) << err;
  EXPECT_EQ(api->histogram_observe(latency, nullptr, 0, 0.005), 0);

  MetricsSnapshot snapshot = registry.collect();
  const MetricFamily* k = snapshot.find("oom_kills");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->spec, "oom");
  EXPECT_EQ(k->series.at(0).labels, (LabelSet{{"comm", "stress"}}));
  EXPECT_EQ(k->series.at(0).value, 3);
  const MetricFamily* l = snapshot.find("alloc_latency_seconds");
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->series.at(0).histogram.counts, (std::vector<uint64_t>{0, 1, 0, 0}));

  registry.remove_spec("oom");
  EXPECT_EQ(registry.collect().find("oom_kills"), nullptr);
}

TEST(PluginMetrics, HostileCallsAreRefusedNotFatal) {
  MetricRegistry registry;
  PluginMetrics host(&registry, "s");
  const ea_metrics_api* api = host.api();
  char err[64] = "";
  EXPECT_EQ(api->declare(api->host, nullptr, err, sizeof(err)), nullptr);
  ea_metric_desc bad{.name = "has space", .kind = EA_METRIC_COUNTER};
  EXPECT_EQ(api->declare(api->host, &bad, err, sizeof(err)), nullptr);
  EXPECT_NE(std::string(err).find("not valid"), std::string::npos) << err;  // truncated, NUL-terminated
  ea_metric_desc odd_kind{.name = "x", .kind = 7};
  EXPECT_EQ(api->declare(api->host, &odd_kind, err, sizeof(err)), nullptr);

  const char* names[] = {"a"};
  ea_metric_desc gauge{.name = "g", .kind = EA_METRIC_GAUGE, .label_names = names, .label_count = 1};
  ea_metric* g = api->declare(api->host, &gauge, err, sizeof(err));
  ASSERT_NE(g, nullptr);
  const char* values[] = {"v"};
  EXPECT_EQ(api->gauge_set(g, values, 1, 4), 0);
  EXPECT_EQ(api->gauge_set(g, values, 2, 4), -EINVAL);          // wrong label count
  EXPECT_EQ(api->gauge_set(g, nullptr, 1, 4), -EINVAL);         // NULL values
  EXPECT_EQ(api->counter_add(g, values, 1, 1), -EINVAL);        // wrong kind
  EXPECT_EQ(api->histogram_observe(nullptr, values, 1, 1), -EINVAL);

  ea_metric_desc counter{.name = "c", .kind = EA_METRIC_COUNTER};
  ea_metric* c = api->declare(api->host, &counter, err, sizeof(err));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(api->counter_add(c, nullptr, 0, -1), -EINVAL);  // counters only go up
  EXPECT_EQ(api->counter_add(c, nullptr, 0, 0.0 / 0.0), -EINVAL);

  PluginMetrics detached(nullptr, "s");
  EXPECT_EQ(detached.api()->declare(detached.api()->host, &counter, err, sizeof(err)), nullptr);
}

}  // namespace
}  // namespace ea
