#include "mlops/core/command_tree.hpp"
#include "mlops/core/error.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace mlops {

namespace {

// roff treats backslashes, hyphens and a leading dot or quote specially.
std::string roff(std::string_view text)
{
  std::string escaped;
  for (char c : text) {
    if (c == '\\') {
      escaped += "\\e";
    } else if (c == '-') {
      escaped += "\\-";
    } else {
      escaped += c;
    }
  }
  if (!escaped.empty() && (escaped[0] == '.' || escaped[0] == '\'')) {
    escaped.insert(0, "\\&");
  }
  return escaped;
}

bool is_help(const CommandOption& option)
{
  return std::find(option.flags.begin(), option.flags.end(), "--help") != option.flags.end();
}

std::string option_entries(const std::vector<CommandOption>& options, bool with_help)
{
  std::string text;
  for (const auto& option : options) {
    if (!with_help && is_help(option)) {
      continue;  // Listed once, under OPTIONS; every command has it.
    }
    text += ".TP\n.B " + roff(fmt::format("{}", fmt::join(option.flags, ", ")));
    if (!option.value_name.empty()) {
      text += " " + roff(option.value_name);
    }
    text += "\n" + roff(option.description) + "\n";
  }
  return text;
}

void command_entries(const CommandNode& node, const std::string& path, std::string& text)
{
  for (const auto& child : node.subcommands) {
    std::string child_path = path + " " + child.name;
    text += ".TP\n.B " + roff(child_path);
    if (!child.usage.empty()) {
      text += " " + roff(child.usage);
    }
    text += "\n" + roff(child.description) + "\n";
    if (auto options = option_entries(child.options, false); !options.empty()) {
      text += ".RS\n" + options + ".RE\n";
    }
    command_entries(child, child_path, text);
  }
}

} // namespace

std::string man_page(const CommandNode& root, std::string_view version)
{
  std::string text = fmt::format(".TH MLOPS 1 \"\" \"mlops {}\" \"User Commands\"\n", roff(version));
  text += ".SH NAME\nmlops \\- " + roff(root.description) + "\n";
  text += ".SH SYNOPSIS\n.B mlops\n[\\fIOPTIONS\\fR] \\fINOUN\\fR \\fIVERB\\fR [\\fIARGS\\fR]\n";
  text += ".SH DESCRIPTION\n"
          "mlops versions data, stores artifacts by content, tracks experiments, keeps a model "
          "registry, serves models on a bundled worker and promotes new versions by canary or "
          "blue\\-green with automatic rollback. All metadata lives in one SQLite file under "
          ".mlops/, found upward from the working directory.\n";
  text += ".SH OPTIONS\nThese work before or after any command.\n" + option_entries(root.options, true);
  text += ".SH COMMANDS\n";
  command_entries(root, "mlops", text);
  text += ".SH EXIT STATUS\n";
  for (int code = 0; code <= static_cast<int>(ExitCode::interrupted); ++code) {
    auto exit_code = static_cast<ExitCode>(code);
    text += fmt::format(".TP\n.B {}\n{}\n", code, roff(exit_code_meaning(exit_code)));
  }
  text += ".SH ENVIRONMENT\n"
          ".TP\n.B MLOPS_HOME\nThe home to use, as with \\-\\-home.\n"
          ".TP\n.B MLOPS_LOG\nLog level on stderr: trace, debug, info, warn (default), error, off.\n"
          ".TP\n.B MLOPS_BUSY_TIMEOUT_MS\nHow long to wait for another process's database lock "
          "(default 30000).\n"
          ".TP\n.B NO_COLOR\nWhen set, output is never coloured.\n";
  text += ".SH FILES\n.TP\n.I .mlops/mlops.db\nThe metadata database (SQLite, WAL).\n"
          ".TP\n.I .mlops/objects/\nContent\\-addressed objects.\n"
          ".TP\n.I .mlops/config.json\nSettings of the home.\n";
  return text;
}

} // namespace mlops
