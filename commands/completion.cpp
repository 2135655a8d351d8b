// mlops completion bash|zsh|fish, and the hidden `mlops manpage`
#include "command_tree.hpp"
#include "context.hpp"
#include "nouns.hpp"

#include "mlops/core/build_info.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace mlops::cli {

namespace {

std::string completion_script(const std::string& shell, const CommandNode& tree)
{
  if (shell == "bash") {
    return bash_completion(tree);
  }
  if (shell == "zsh") {
    return zsh_completion(tree);
  }
  return fish_completion(tree);
}

} // namespace

void setup_completion(CLI::App& noun, Context& context)
{
  auto shell = std::make_shared<std::string>();
  noun.add_option("SHELL", *shell, "The shell to complete for")
    ->required()
    ->check(CLI::IsMember({"bash", "zsh", "fish"}));
  noun.footer("Install: `mlops completion bash > ~/.local/share/bash-completion/completions/mlops`");
  on_run(noun, context, [&context, &noun, shell] {
    std::string script = completion_script(*shell, command_tree(*noun.get_parent()));
    context.out().result({{"shell", *shell}, {"script", script}}, script);
  });
}

void setup_manpage(CLI::App& noun, Context& context)
{
  on_run(noun, context, [&context, &noun] {
    std::string page = man_page(command_tree(*noun.get_parent()), mlops_version());
    context.out().result({{"man", page}}, page);
  });
}

} // namespace mlops::cli
