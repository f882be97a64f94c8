// The watch counters as the reports name them (WatchCounters::for_each): /stats keys kept from
// the first version, Prometheus families with their characteristics as labels (docs/metrics.md).
#include <utility>

#include "control/k8s_client/watcher.hpp"

namespace magline::k8s {

namespace {

std::string_view watch_help(std::string_view metric) {
  static constexpr std::pair<std::string_view, std::string_view> kHelp[] = {
      {"watch_lists_total", "Complete LISTs (all pages), by resource."},
      {"watch_list_pages_total", "LIST responses with 200, by resource."},
      {"watch_relists_total", "Returns to LIST after the watch had started, by resource."},
      {"watch_watches_started_total", "WATCH requests answered 200, by resource."},
      {"watch_clean_ends_total", "Watches the server ended cleanly, by resource."},
      {"watch_events_total", "Watch events received, by resource and type."},
      {"watch_error_events_total", "ERROR watch events, by resource and code (410: expired)."},
      {"watch_responses_total",
       "LIST and WATCH answers other than 200, by resource and status (504: too large a "
       "resource version; 5xx: any other 5xx)."},
      {"watch_connection_errors_total", "Transfers that failed below HTTP, by resource."},
      {"watch_backoffs_total", "Waits before a retry (backoff or Retry-After), by resource."},
      {"watch_decode_errors_total",
       "Unframeable streams, bad JSON, unknown event types, by resource."},
      {"watch_token_reloads_total", "Re-reads of the token file, by resource."},
      {"watch_received_bytes_total", "Response body bytes, LIST and WATCH, by resource."},
  };
  for (const auto& [name, help] : kHelp) {
    if (name == metric) return help;
  }
  return "";
}

}  // namespace

void WatchCounters::for_each(const std::function<void(const WatchCounterRow&)>& fn) const {
  // Characteristics (event type, HTTP status) are labels, so that each family sums to something
  // meaningful: every event, every refused request.
  struct Row {
    const char* json;
    const char* metric;
    const char* label;
    const std::atomic<uint64_t>* value;
  };
  const Row all[] = {
      {"watch_lists_total", "watch_lists_total", "", &lists},
      {"watch_list_pages_total", "watch_list_pages_total", "", &list_pages},
      {"watch_relists_total", "watch_relists_total", "", &relists},
      {"watch_watches_started_total", "watch_watches_started_total", "", &watches_started},
      {"watch_clean_ends_total", "watch_clean_ends_total", "", &clean_ends},
      {"watch_events_added_total", "watch_events_total", "type=\"ADDED\"", &events_added},
      {"watch_events_modified_total", "watch_events_total", "type=\"MODIFIED\"", &events_modified},
      {"watch_events_deleted_total", "watch_events_total", "type=\"DELETED\"", &events_deleted},
      {"watch_bookmarks_total", "watch_events_total", "type=\"BOOKMARK\"", &bookmarks},
      {"watch_expired_in_band_total", "watch_error_events_total", "code=\"410\"", &expired_in_band},
      {"watch_errors_in_band_total", "watch_error_events_total", "code=\"other\"", &errors_in_band},
      {"watch_http_410_total", "watch_responses_total", "code=\"410\"", &http_410},
      {"watch_http_429_total", "watch_responses_total", "code=\"429\"", &http_429},
      {"watch_http_5xx_total", "watch_responses_total", "code=\"5xx\"", &http_5xx},
      {"watch_too_large_rv_total", "watch_responses_total", "code=\"504\"", &too_large_rv},
      {"watch_http_401_total", "watch_responses_total", "code=\"401\"", &http_401},
      {"watch_http_other_total", "watch_responses_total", "code=\"other\"", &http_other},
      {"watch_connection_errors_total", "watch_connection_errors_total", "", &connection_errors},
      {"watch_backoffs_total", "watch_backoffs_total", "", &backoffs},
      {"watch_decode_errors_total", "watch_decode_errors_total", "", &decode_errors},
      {"watch_token_reloads_total", "watch_token_reloads_total", "", &token_reloads},
      {"watch_bytes_received_total", "watch_received_bytes_total", "", &bytes_received},
  };
  for (const Row& r : all) {
    fn(WatchCounterRow{r.json, r.metric, r.label, watch_help(r.metric),
                       r.value->load(std::memory_order_relaxed)});
  }
}

}  // namespace magline::k8s
