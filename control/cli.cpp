#include "control/cli.hpp"

#include <boost/program_options.hpp>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>
#include <string_view>

#include "config/config.hpp"
#include "control/build_info.hpp"
#include "control/completion.hpp"
#include "control/k8s/plan.hpp"
#include "control/k8s/plan_table.hpp"
#include "control/k8s_client/k8s_document.hpp"
#include "control/k8s_feed.hpp"
#include "control/k8s_source.hpp"
#include "control/preflight.hpp"
#include "control/replay.hpp"
#include "control/runtime.hpp"
#include "control/table_report.hpp"
#include "dataplane/dpdk/eal.hpp"

namespace magline::cli {

namespace po = boost::program_options;

namespace {

struct Command {
  std::string_view name;
  std::string_view summary;
  po::options_description (*options)();  // what it parses, and what completion offers
  int (*run)(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
};

// Parses a subcommand's options. Returns kOk, kUsage after printing why, or -1 after printing
// help (the caller then exits with kOk).
int parse(std::string_view command, const po::options_description& desc,
          const std::vector<std::string>& args, po::variables_map& vm, std::ostream& out,
          std::ostream& err) {
  try {
    const po::positional_options_description none;  // stray words are errors
    // No guessing of prefixes (--conf for --config): a later option sharing the prefix would
    // change what a script's command line means, or make it ambiguous.
    const int style =
        po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
    po::store(po::command_line_parser(args).options(desc).positional(none).style(style).run(), vm);
    // --help before the checks of required options: `magline replay --help` is an answer,
    // not an error about a missing --in.
    if (vm.count("help")) {
      out << "Usage: magline " << command << " [OPTIONS]\n\n" << desc;
      return -1;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    err << "magline " << command << ": " << e.what() << "\n"
        << "Run 'magline " << command << " --help' for its options.\n";
    return kUsage;
  }
  return kOk;
}

po::options_description config_options(std::string_view command) {
  po::options_description desc("Options of 'magline " + std::string(command) + "'");
  desc.add_options()("help,h", "show this help")(
      "config,c", po::value<std::string>()->value_name("FILE"),
      command == "run"
          ? "configuration file (JSON, docs/config.md; re-read on SIGHUP, so a file, not '-'); "
            "default: the embedded default"
          : "configuration file (JSON, docs/config.md); '-' reads standard input; default: the "
            "embedded default");
  return desc;
}

// At most one option may read standard input ("-"). Prints why and returns false otherwise.
bool one_stdin(std::string_view command, const po::variables_map& vm,
               std::initializer_list<const char*> options, std::ostream& err) {
  std::vector<std::string> readers;
  for (const char* o : options) {
    if (vm.count(o) && vm[o].as<std::string>() == "-") readers.push_back(std::string("--") + o);
  }
  if (readers.size() < 2) return true;
  err << "magline " << command << ": " << readers[0] << " and " << readers[1]
      << " cannot both read standard input ('-')\n";
  return false;
}

// The configuration named by --config (or the embedded one), with its services built: exactly
// what `run` would forward. Errors are printed; nullptr then.
std::shared_ptr<const dp::Snapshot> load(const po::variables_map& vm, cfg::Config& config,
                                         std::ostream& err) {
  auto loaded = cfg::load_or_default(
      vm.count("config") ? std::optional(vm["config"].as<std::string>()) : std::nullopt);
  if (!loaded) {
    err << loaded.error().message << "\n";
    return nullptr;
  }
  config = std::move(loaded).value();
  auto snapshot = dp::Snapshot::build(cfg::services_of(config));
  if (!snapshot) {
    err << config.source << ": " << snapshot.error().message << "\n";
    return nullptr;
  }
  return std::move(snapshot).value();
}

po::options_description check_options() {
  return config_options("check");
}

int cmd_check(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const po::options_description desc = check_options();
  po::variables_map vm;
  if (const int rc = parse("check", desc, args, vm, out, err); rc != kOk) {
    return rc < 0 ? kOk : rc;
  }
  cfg::Config config;
  const auto snapshot = load(vm, config, err);
  if (!snapshot) return kInvalid;
  size_t frontends = 0, backends = 0;
  for (const auto& s : snapshot->services()) {
    frontends += s->spec().frontends.size();
    backends += s->spec().backends.size();
  }
  // What `run` checks of the machine before starting (the in-cluster files exist only in a
  // pod: not checked).
  if (auto ok =
          control::preflight(config, control::HostFacts::of_this_process(), {.in_cluster = false});
      !ok) {
    err << ok.error().message << "\n";
    return kInvalid;
  }
  for (const std::string& w : control::af_packet_warnings(config)) {
    err << config.source << ": warning: " << w << "\n";
  }
  const cfg::KubernetesConfig& k = config.kubernetes;
  out << config.source << ": OK: " << snapshot->services().size() << " services, " << frontends
      << " frontends, " << backends << " backends";
  if (k.enabled && k.in_cluster) {
    out << "; watching Kubernetes (in cluster)";
  } else if (k.enabled) {
    const control::KubeconfigFile file = control::kubeconfig_file(k);
    out << "; watching Kubernetes (" << file.path;
    if (!file.from.empty()) out << ", from " << file.from;
    out << ")";
  }
  out << "\n";
  return kOk;
}

po::options_description table_options() {
  po::options_description desc = config_options("table");
  desc.add_options()("json", "print JSON instead of text")(
      "dump", "also print every slot of every table (the backend each slot holds)");
  return desc;
}

int cmd_table(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const po::options_description desc = table_options();
  po::variables_map vm;
  if (const int rc = parse("table", desc, args, vm, out, err); rc != kOk) {
    return rc < 0 ? kOk : rc;
  }
  cfg::Config config;
  const auto snapshot = load(vm, config, err);
  if (!snapshot) return kInvalid;
  const bool dump = vm.count("dump") > 0;
  out << (vm.count("json") ? table_json(*snapshot, dump) : table_text(*snapshot, dump));
  return kOk;
}

po::options_description run_options() {
  po::options_description desc = config_options("run");
  desc.add_options()("duration", po::value<double>()->value_name("SECONDS"),
                     "stop after this many seconds (default: run until SIGTERM or SIGINT)")(
      "stats", po::value<std::string>()->value_name("FILE"),
      "also write the final counters (JSON) to FILE")(
      "log-format", po::value<std::string>()->value_name("text|logfmt|json"),
      "the lines on standard error: text (the default, as written), logfmt or json (one "
      "record per line with time, level and msg)")(
      "log-level", po::value<std::string>()->value_name("debug|info|warning|error"),
      "leave out the lines below this level (default: info)");
  return desc;
}

int cmd_run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const po::options_description desc = run_options();
  po::variables_map vm;
  if (const int rc = parse("run", desc, args, vm, out, err); rc != kOk) {
    return rc < 0 ? kOk : rc;
  }
  // '-' makes sense for neither: SIGHUP re-reads the file, and the counters already go to
  // standard output.
  if (vm.count("config") && vm["config"].as<std::string>() == "-") {
    err << "magline run: --config -: run re-reads its configuration on SIGHUP, so it needs a "
           "file\n";
    return kUsage;
  }
  if (vm.count("stats") && vm["stats"].as<std::string>() == "-") {
    err << "magline run: --stats -: the counters already go to standard output; --stats "
           "takes a file\n";
    return kUsage;
  }
  control::RunOptions opts;
  if (vm.count("config")) opts.config_path = vm["config"].as<std::string>();
  if (vm.count("duration")) {
    opts.duration_s = vm["duration"].as<double>();
    if (!std::isfinite(opts.duration_s) || opts.duration_s <= 0) {  // NaN fails both
      err << "magline run: --duration: expected a number of seconds above 0, got "
          << opts.duration_s << "\n";
      return kUsage;
    }
  }
  if (vm.count("stats")) opts.stats_path = vm["stats"].as<std::string>();
  if (vm.count("log-format")) {
    const std::string f = vm["log-format"].as<std::string>();
    const auto format = control::parse_log_format(f);
    if (!format) {
      err << "magline run: --log-format: expected text, logfmt or json, got \"" << f << "\"\n";
      return kUsage;
    }
    opts.log_format = *format;
  }
  if (vm.count("log-level")) {
    const std::string l = vm["log-level"].as<std::string>();
    const auto level = control::parse_log_level(l);
    if (!level) {
      err << "magline run: --log-level: expected debug, info, warning or error, got \"" << l
          << "\"\n";
      return kUsage;
    }
    opts.log_level = *level;
  }
  return control::run(opts, out, err) == 0 ? kOk : kInvalid;
}

po::options_description replay_options() {
  po::options_description desc = config_options("replay");
  desc.add_options()("in", po::value<std::string>()->value_name("IN.pcap")->required(),
                     "the capture to replay (Ethernet); '-' reads standard input")(
      "out", po::value<std::string>()->value_name("OUT.pcap")->required(),
      "where to write what Magline transmits; '-' writes standard output (the counters then go "
      "to standard error)");
  return desc;
}

int cmd_replay(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const po::options_description desc = replay_options();
  po::variables_map vm;
  if (const int rc = parse("replay", desc, args, vm, out, err); rc != kOk) {
    return rc < 0 ? kOk : rc;
  }
  if (!one_stdin("replay", vm, {"config", "in"}, err)) return kUsage;
  control::ReplayOptions opts;
  if (vm.count("config")) opts.config_path = vm["config"].as<std::string>();
  opts.in = vm["in"].as<std::string>();
  opts.out = vm["out"].as<std::string>();
  return control::replay(opts, out, err) == 0 ? kOk : kInvalid;
}

// `magline plan`: what Services and EndpointSlices (kubectl's JSON or YAML) become, without a
// cluster.
po::options_description plan_options() {
  po::options_description desc("Options of 'magline plan'");
  desc.add_options()("help,h", "show this help")(
      "k8s", po::value<std::string>()->value_name("FILE"),
      "Services and EndpointSlices (and Nodes, for --targets nodes) as JSON or YAML, e.g. from "
      "'kubectl get services,endpointslices,nodes -A -o json' (or -o yaml), or manifests "
      "separated by '---'; '-' reads standard input")(
      "config,c", po::value<std::string>()->value_name("FILE"),
      "take node addresses, table size and the kubernetes section's options from this "
      "configuration; '-' reads standard input")(
      "node-address", po::value<std::vector<std::string>>()->value_name("ADDR")->composing(),
      "an address NodePorts listen on (repeatable; default: the configuration's node addresses)")(
      "proxy-name", po::value<std::string>()->value_name("NAME"),
      "claim Services labelled service.kubernetes.io/service-proxy-name=NAME")(
      "lb-class", po::value<std::string>()->value_name("CLASS"),
      "claim LoadBalancer Services of this loadBalancerClass (default: classless ones)")(
      "default-lb-class", "with --lb-class, claim classless LoadBalancer Services too")(
      "node-name", po::value<std::string>()->value_name("NAME"),
      "the node Magline runs as (externalTrafficPolicy Local, node hints)")(
      "zone", po::value<std::string>()->value_name("ZONE"), "that node's zone (zone hints)")(
      "targets", po::value<std::string>()->value_name("pods|nodes"),
      "the backends: pods (EndpointSlices; the default) or nodes (the Nodes in FILE at each "
      "port's nodePort)")(
      "output,o", po::value<std::string>()->value_name("json|table"),
      "json (the default; for scripts) or table (for people: one row per frontend)")(
      "strict",
      "exit 1 when anything would not be served as asked (a Service skipped other "
      "than by design, an address refused, a note, an item that did not decode), one line "
      "each on standard error");
  return desc;
}

int cmd_plan(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const po::options_description desc = plan_options();
  po::variables_map vm;
  if (const int rc = parse("plan", desc, args, vm, out, err); rc != kOk) {
    return rc < 0 ? kOk : rc;
  }
  // Checked here rather than by required(), which would refuse --help without it.
  if (!vm.count("k8s")) {
    err << "magline plan: the option '--k8s' is required but missing\n"
        << "Run 'magline plan --help' for its options.\n";
    return kUsage;
  }
  if (!one_stdin("plan", vm, {"config", "k8s"}, err)) return kUsage;
  const std::string format = vm.count("output") ? vm["output"].as<std::string>() : "json";
  if (format != "json" && format != "table") {
    err << "magline plan: --output: expected json or table, got \"" << format << "\"\n";
    return kUsage;
  }

  k8s::TranslateOptions opts;
  if (vm.count("config")) {
    auto loaded = cfg::load_config(vm["config"].as<std::string>());
    if (!loaded) {
      err << loaded.error().message << "\n";
      return kInvalid;
    }
    opts = control::translate_options(*loaded);  // what the watcher would use
  }
  if (vm.count("node-address")) {
    opts.node_addresses.clear();
    for (const std::string& text : vm["node-address"].as<std::vector<std::string>>()) {
      const auto a = dp::parse_ip(text);
      if (!a) {
        err << "magline plan: --node-address: \"" << text << "\" is not an IP address\n";
        return kUsage;
      }
      if (dp::is_link_local(*a)) {  // as node.addresses refuses them (docs/config.md)
        err << "magline plan: --node-address: " << text
            << " is link-local (169.254.0.0/16, fe80::/10): NodePorts listen on routable "
               "addresses\n";
        return kUsage;
      }
      opts.node_addresses.push_back(*a);
    }
  }
  if (vm.count("proxy-name")) opts.proxy_name = vm["proxy-name"].as<std::string>();
  if (vm.count("lb-class")) opts.load_balancer_class = vm["lb-class"].as<std::string>();
  if (vm.count("default-lb-class")) {
    if (opts.load_balancer_class.empty()) {
      err << "magline plan: --default-lb-class needs a class (--lb-class, or the "
             "configuration's load_balancer_class)\n";
      return kUsage;
    }
    opts.default_load_balancer_class = true;
  }
  if (vm.count("node-name")) opts.node_name = vm["node-name"].as<std::string>();
  if (vm.count("zone")) opts.zone = vm["zone"].as<std::string>();
  if (vm.count("targets")) {
    const std::string targets = vm["targets"].as<std::string>();
    if (targets != "pods" && targets != "nodes") {
      err << "magline plan: --targets: expected pods or nodes, got \"" << targets << "\"\n";
      return kUsage;
    }
    opts.targets = targets == "nodes" ? k8s::Targets::nodes : k8s::Targets::pods;
  }

  const std::string path = vm["k8s"].as<std::string>();
  const std::string source = path == "-" ? "<stdin>" : path;
  std::ostringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      err << path << ": cannot read the file\n";
      return kInvalid;
    }
    text << in.rdbuf();
  }
  const auto doc = control::parse_k8s_document(text.str(), source);
  if (!doc) {
    err << doc.error().message << "\n";
    return kInvalid;
  }
  auto objects = k8s::parse_list(*doc);
  if (!objects) {
    err << source << ": " << objects.error().message << "\n";
    return kInvalid;
  }
  const k8s::Plan plan = k8s::build_plan(*objects, opts);
  out << (format == "table" ? k8s::plan_table(plan) : k8s::plan_json(plan));
  if (!vm.count("strict")) return kOk;
  const std::vector<std::string> problems = k8s::plan_problems(plan);
  for (const std::string& p : problems)
    err << "magline plan: strict: " << p << "\n";
  return problems.empty() ? kOk : kInvalid;
}

po::options_description help_only(std::string_view command) {
  po::options_description desc("Options of 'magline " + std::string(command) + "'");
  desc.add_options()("help,h", "show this help");
  return desc;
}

po::options_description version_options() {
  return help_only("version");
}

int cmd_version(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const po::options_description desc = version_options();
  po::variables_map vm;
  if (const int rc = parse("version", desc, args, vm, out, err); rc != kOk) {
    return rc < 0 ? kOk : rc;
  }
  control::BuildInfo b = control::build_info();
  b.dpdk = dpdk::version();
  out << "magline " << b.version << "\ncommit: " << b.commit << "\nbuild type: " << b.buildtype
      << "\nDPDK: " << b.dpdk << "\ncompiler: " << b.compiler << "\n";
  return kOk;
}

po::options_description completion_options() {
  return help_only("completion");
}
int cmd_completion(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

constexpr Command kCommands[] = {
    {"run", "run the load balancer (DPDK)", run_options, cmd_run},
    {"replay", "run a capture through the forwarding pipeline offline", replay_options, cmd_replay},
    {"check", "validate a configuration file and exit", check_options, cmd_check},
    {"table", "print each service's backends and Maglev slot counts", table_options, cmd_table},
    {"plan", "print what Kubernetes Services and EndpointSlices become", plan_options, cmd_plan},
    {"version", "print the version", version_options, cmd_version},
    {"completion", "print a shell completion script (bash, zsh)", completion_options,
     cmd_completion},
};

// `magline completion bash|zsh`: from kCommands' own option tables, so it cannot drift.
int cmd_completion(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const po::options_description desc = completion_options();
  std::vector<std::string> options;
  std::vector<std::string> shells;
  for (const std::string& a : args)
    (a.starts_with("-") ? options : shells).push_back(a);
  po::variables_map vm;
  if (const int rc = parse("completion", desc, options, vm, out, err); rc != kOk) {
    return rc < 0 ? kOk : rc;
  }
  if (shells.size() != 1 || (shells[0] != "bash" && shells[0] != "zsh")) {
    err << "magline completion: expected one shell, bash or zsh"
        << (shells.empty() ? std::string() : ", got \"" + shells[0] + "\"") << "\n"
        << "Run 'magline completion --help' for its options.\n";
    return kUsage;
  }
  std::vector<CompletedCommand> commands;
  for (const Command& c : kCommands) {
    commands.push_back({c.name, c.options(), c.name == "completion" ? "bash zsh" : ""});
  }
  out << (shells[0] == "bash" ? bash_completion(commands) : zsh_completion(commands));
  return kOk;
}

void usage(std::ostream& o) {
  o << "Usage: magline COMMAND [OPTIONS]\n\nMagline: a DPDK service load balancer for "
       "Kubernetes.\n\nCommands:\n";
  for (const Command& c : kCommands) {
    o << "  " << c.name << std::string(12 - c.name.size(), ' ') << c.summary << "\n";
  }
  o << "\nRun 'magline COMMAND --help' for a command's options. Documentation: docs/cli.md\n";
}

// Passes everything to standard output's buffer and keeps the system's reason for the first
// write that failed: by the time the stream is found bad, errno is long gone, and flushing again
// finds nothing left to write.
class ReasonBuf final : public std::streambuf {
 public:
  explicit ReasonBuf(std::streambuf* inner) : inner_(inner) {}
  int reason() const noexcept { return reason_; }

 protected:
  int_type overflow(int_type c) override {
    if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
    errno = 0;
    const int_type r = inner_->sputc(traits_type::to_char_type(c));
    if (traits_type::eq_int_type(r, traits_type::eof())) failed();
    return r;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    errno = 0;
    const std::streamsize written = inner_->sputn(s, n);
    if (written != n) failed();
    return written;
  }
  int sync() override {
    errno = 0;
    const int r = inner_->pubsync();
    if (r != 0) failed();
    return r;
  }

 private:
  void failed() {
    if (reason_ == 0) reason_ = errno != 0 ? errno : -1;
  }
  std::streambuf* inner_;
  int reason_ = 0;
};

// What the command printed must have reached standard output (`magline table > /dev/full`
// exited 0): its status stands only if every write and the final flush succeeded.
int output_written(int rc, std::ostream& tracked, const ReasonBuf& buf, std::ostream& out,
                   std::ostream& err) {
  tracked.flush();
  if (tracked && out && buf.reason() == 0) return rc;
  out.setstate(std::ios::badbit);
  err << "magline: standard output: cannot write";
  if (buf.reason() > 0) err << ": " << std::strerror(buf.reason());
  err << "\n";
  return rc == kOk ? kInvalid : rc;
}

int dispatch(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) {
    usage(err);
    return kUsage;
  }
  const std::string& name = args[0];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(out);
    return kOk;
  }
  if (name == "--version") return cmd_version({}, out, err);
  for (const Command& c : kCommands) {
    if (c.name == name) return c.run({args.begin() + 1, args.end()}, out, err);
  }
  err << "magline: unknown command '" << name << "'\n\n";
  usage(err);
  return kUsage;
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  ReasonBuf buf(out.rdbuf());
  std::ostream tracked(&buf);
  const int rc = dispatch(args, tracked, err);
  return output_written(rc, tracked, buf, out, err);
}

}  // namespace magline::cli
