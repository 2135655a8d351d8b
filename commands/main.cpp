// mlops: the command line. Nouns are registered in one table below; each noun's verbs live in
// their own file. All logic is in the core library; this file only parses and reports.

#include "context.hpp"
#include "nouns.hpp"

#include "mlops/core/build_info.hpp"
#include "mlops/core/interrupt.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string_view>

namespace mlops::cli {

namespace {

struct Noun
{
  const char* name;
  const char* summary;
  NounSetup setup;
  bool hidden = false;  // left out of --help and completions
};

// Every noun of mlops, in the order --help lists them.
constexpr Noun nouns[] = {
  {"init", "Create an mlops home (.mlops/) in a directory", setup_init},
  {"hash", "Hash files and directories by content (SHA-256)", setup_hash},
  {"artifact", "Store, fetch and verify content-addressed artifacts", setup_artifact},
  {"data", "Version datasets: add, diff, status, checkout", setup_data},
  {"exp", "Manage experiments", setup_exp},
  {"run", "Track runs: params, metrics, artifacts, search", setup_run},
  {"model", "Model registry: versions, aliases, lineage, gates", setup_model},
  {"serve", "Serve model versions on the bundled worker", setup_serve},
  {"deploy", "Promote model versions by canary or blue-green", setup_deploy},
  {"db", "Check and migrate the metadata database", setup_db},
  {"completion", "Print shell completion for bash, zsh or fish", setup_completion},
  {"version", "Print the versions of mlops and its libraries", setup_version},
  {"manpage", "Print the man page (used by the build)", setup_manpage, true},
};

void add_global_options(CLI::App& app, GlobalOptions& options)
{
  app.add_option("--home", options.home, "Use the mlops home in DIR instead of searching upward")
    ->envname("MLOPS_HOME")
    ->type_name("DIR");
  app.add_flag("--json", options.json, "Print one JSON document on stdout");
  app.add_flag("-q,--quiet", options.quiet, "Print only results and errors");
  app.add_flag("-v,--verbose", options.verbosity, "Log more on stderr (repeat for more)");
  app.add_flag("--no-color", options.no_color, "Never colour the output");
  app.set_version_flag("--version", fmt::format("mlops {}", mlops_version()),
                       "Print the version and exit");
}

// --json is looked up in the raw arguments too: a parse error happens before the parser has read
// it, and a planned noun takes every word after it as its own.
bool json_requested(int argc, char** argv)
{
  for (int i = 1; i < argc && std::string_view(argv[i]) != "--"; ++i) {
    if (std::string_view(argv[i]) == "--json") {
      return true;
    }
  }
  return false;
}

// Whether the command is `run exec` (`mlops [global options] run exec ...`): the first two words
// that are neither options nor the value of --home.
bool runs_a_command(int argc, char** argv)
{
  std::vector<std::string_view> words;
  for (int i = 1; i < argc && words.size() < 2; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      break;
    }
    if (arg == "--home") {
      ++i;
    } else if (!arg.starts_with("-")) {
      words.push_back(arg);
    }
  }
  return words.size() == 2 && words[0] == "run" && words[1] == "exec";
}

// The words of the deepest command the parser reached ("mlops db"), for error messages.
const CLI::App* deepest_command(const CLI::App& app, std::string& path)
{
  path += path.empty() ? app.get_name() : " " + app.get_name();
  auto chosen = app.get_subcommands();
  return chosen.empty() ? &app : deepest_command(*chosen.front(), path);
}

// CLI11 reports `mlops bogus` as "a subcommand is required"; say what the user got wrong.
std::string usage_message(const CLI::App& app, const CLI::ParseError& error)
{
  std::string path;
  const CLI::App* command = deepest_command(app, path);
  // With fallthrough, the words a command did not take end up with its parents.
  auto extra = app.remaining(true);
  if (!extra.empty() && command->get_require_subcommand_min() > 0 &&
      command->get_subcommands().empty()) {
    const std::string& word = extra.front();
    return word.starts_with("-")
             ? fmt::format("unknown option `{}`, run `{} --help` for the options", word, path)
             : fmt::format("unknown command `{} {}`, run `{} --help` for the list", path, word, path);
  }
  std::string message = error.what();
  if (message.size() > 1 && !std::isupper(static_cast<unsigned char>(message[1]))) {
    message[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(message[0])));
  }
  return fmt::format("{}, run `{} --help` for usage", message, path);
}

int report(Context& context, const Error& error)
{
  try {
    context.out().error(error);
  } catch (...) {
    std::fputs("mlops: error: reporting an error failed\n", stderr);  // Out of memory, most likely.
  }
  return error.exit_status();
}

} // namespace

int run(int argc, char** argv)
{
  install_interrupt_handlers();
  Context context;
  context.options.json = json_requested(argc, argv);
  for (int i = 0; i < argc; ++i) {
    context.command_line += (i == 0 ? "mlops" : std::string(" ") + argv[i]);
  }
  CLI::App app("one-binary MLOps control plane", "mlops");
  app.fallthrough();  // Global options may follow the command: `mlops db check --json`.
  app.require_subcommand(1);
  app.footer("Run `mlops COMMAND --help` for a command's options. Exit codes: `man mlops`.");
  add_global_options(app, context.options);
  for (const auto& noun : nouns) {
    auto* sub = app.add_subcommand(noun.name, noun.summary);
    // CLI11 hides a subcommand whose group is empty.
    sub->group(noun.hidden ? "" : "Commands");
    noun.setup(*sub, context);
  }

  try {
    try {
      // For `run exec`, the words after `--` are the command to run, never mlops' own arguments;
      // elsewhere `--` keeps its usual meaning (what follows is positional: `-- -name`).
      int own = argc;
      if (runs_a_command(argc, argv)) {
        own = 1;
        while (own < argc && std::string_view(argv[own]) != "--") {
          ++own;
        }
        context.trailing_args.assign(argv + std::min(own + 1, argc), argv + argc);
        context.has_trailing = own < argc;
      }
      app.parse(own, argv);
    } catch (const CLI::CallForHelp& help) {
      return app.exit(help);
    } catch (const CLI::CallForAllHelp& help) {
      return app.exit(help);
    } catch (const CLI::CallForVersion& version) {
      return app.exit(version);
    } catch (const CLI::ParseError& error) {
      throw Error(ExitCode::usage, usage_message(app, error));
    }
  } catch (const Error& error) {
    return report(context, error);
  } catch (const std::exception& error) {
    // A bug or an unexpected library failure: still one clear line and a failure code.
    return report(context, Error(ExitCode::failure, fmt::format("unexpected failure: {}", error.what())));
  }
  if (context.exit_code() == ExitCode::ok) {
    // A signal after the last check: the work may be complete, but the caller asked us to stop
    // and must not read success.
    try {
      throw_if_interrupted();
    } catch (const Error& error) {
      return report(context, error);
    }
  }
  return static_cast<int>(context.exit_code());
}

CLI::App* add_verb(CLI::App& noun, Context& context, const char* name, const char* summary, std::function<void()> run)
{
  auto* verb = noun.add_subcommand(name, summary);
  on_run(*verb, context, std::move(run));
  return verb;
}

void on_run(CLI::App& app, Context& context, std::function<void()> handler, bool takes_command)
{
  app.callback([&context, &app, takes_command, handler = std::move(handler)] {
    context.start();
    context.throw_if_setup_failed();
    if (context.has_trailing && !takes_command) {
      const CLI::App* noun = app.get_parent();
      bool nested = noun && noun->get_parent();
      throw Error(ExitCode::usage, fmt::format("`mlops {}{}` takes no command after --", nested ? noun->get_name() + " " : "", app.get_name()));
    }
    throw_if_interrupted();
    handler();
  });
}

} // namespace mlops::cli

int main(int argc, char** argv)
{
  return mlops::cli::run(argc, argv);
}
