#include "command_tree.hpp"

#include <CLI/CLI.hpp>

namespace mlops::cli {

namespace {

// CLI11 shows a choice validator in the type name as "TEXT:{bash,zsh,fish}".
std::vector<std::string> choice_words(const std::string& type_name)
{
  std::vector<std::string> words;
  auto open = type_name.find('{');
  auto close = type_name.find('}', open);
  if (open == std::string::npos || close == std::string::npos) {
    return words;
  }
  std::string list = type_name.substr(open + 1, close - open - 1);
  for (size_t start = 0, end; start <= list.size(); start = end + 1) {
    end = std::min(list.find(',', start), list.size());
    words.push_back(list.substr(start, end - start));
  }
  return words;
}

} // namespace

CommandNode command_tree(const CLI::App& app)
{
  CommandNode node;
  node.name = app.get_name();
  node.description = app.get_description();
  if (app.get_group() == "Planned") {
    node.description += " (planned, not in this version yet)";
  }
  for (const auto* option : app.get_options()) {
    if (option->get_positional()) {
      std::string name = option->get_name();
      node.usage += (node.usage.empty() ? "" : " ") +
                    (option->get_required() ? name : "[" + name + "]");
      auto words = choice_words(option->get_type_name());
      node.arg_words.insert(node.arg_words.end(), words.begin(), words.end());
      continue;
    }
    CommandOption entry;
    for (const auto& name : option->get_snames()) {
      entry.flags.push_back("-" + name);
    }
    for (const auto& name : option->get_lnames()) {
      entry.flags.push_back("--" + name);
    }
    if (option->get_type_size_max() > 0) {
      entry.value_name = option->get_type_name();
    }
    entry.description = option->get_description();
    node.options.push_back(std::move(entry));
  }
  for (const auto* sub : app.get_subcommands([](const CLI::App* candidate) {
         return !candidate->get_group().empty();
       })) {
    node.subcommands.push_back(command_tree(*sub));
  }
  return node;
}

} // namespace mlops::cli
