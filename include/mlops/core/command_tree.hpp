#pragma once
// The command line as data: what `mlops completion` and the man page are generated from. The
// commands layer builds it from the CLI11 tree, so completions can never list a command or an
// option that the parser does not have.

#include <string>
#include <string_view>
#include <vector>

namespace mlops {

struct CommandOption
{
  std::vector<std::string> flags;  // "-v", "--verbose"
  std::string value_name;          // "DIR"; empty for a flag without a value
  std::string description;
};

struct CommandNode
{
  std::string name;
  std::string description;
  std::string usage;                   // positional arguments, "NAME@REF [OUT]"
  std::vector<std::string> arg_words;  // fixed words a positional takes ("bash", "zsh", "fish")
  std::vector<CommandOption> options;  // the root's options apply to every subcommand too
  std::vector<CommandNode> subcommands;
};

std::string bash_completion(const CommandNode& root);
std::string zsh_completion(const CommandNode& root);
std::string fish_completion(const CommandNode& root);

// A man page (roff) describing every command and option.
std::string man_page(const CommandNode& root, std::string_view version);

} // namespace mlops
