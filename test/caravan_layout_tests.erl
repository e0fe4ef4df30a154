%%% The layout the README's "Development" section draws is the layout of the
%%% files: every folder of port_src/ and erl_src/, every C source and every
%%% Erlang module is named in its tree, so a file added or moved without it
%%% fails here. And the limits the project keeps (issue 19): no C file over
%%% about 450 lines, no Erlang module over about 550, each beginning with the
%%% comment that says what it owns.
-module(caravan_layout_tests).

-include_lib("eunit/include/eunit.hrl").

%% "About" 450 and 550: a few lines of slack, not a second limit.
-define(MAX_C_LINES, 460).
-define(MAX_ERL_LINES, 560).

tree() ->
    {ok, Readme} = file:read_file("README.md"),
    [_, AfterHeading] = binary:split(Readme, <<"## Development\n">>),
    [_, Block, _] = binary:split(AfterHeading, <<"```">>, [global]),
    Block.

%% Words of the tree: names with their extension or path parts cut off.
tree_words() ->
    Words = string:lexemes(binary_to_list(tree()), " \t\n,():+/"),
    sets:from_list([filename:rootname(W) || W <- Words]).

folders(Root) ->
    [filename:basename(D) || D <- filelib:wildcard(Root ++ "/*"), filelib:is_dir(D)].

c_sources() ->
    filelib:wildcard("port_src/**/*.c").

erl_modules() ->
    filelib:wildcard("erl_src/**/*.erl").

every_folder_is_in_the_tree_test() ->
    Words = tree_words(),
    Missing = [{Root, F} || Root <- ["port_src", "erl_src", "test"],
                            F <- folders(Root), F =/= "logs",
                            not sets:is_element(F, Words)],
    ?assertEqual([], Missing).

every_c_file_is_in_the_tree_test() ->
    Words = tree_words(),
    Missing = [F || F <- c_sources(),
                    not sets:is_element(filename:basename(F, ".c"), Words)],
    ?assertEqual([], Missing).

%% A module is named whole (caravan_dns) or as a suffix after its family
%% (caravan_port, _frame); the Elixir.Caravan.* modules of compat/ as a group.
every_module_is_in_the_tree_test() ->
    Words = tree_words(),
    Named = fun(Module) ->
                    sets:is_element(Module, Words) orelse
                        lists:any(fun(Suffix) -> sets:is_element(Suffix, Words) end,
                                  suffixes(Module))
            end,
    Missing = [F || F <- erl_modules(),
                    Module <- [filename:basename(F, ".erl")],
                    not lists:prefix("Elixir.", Module),
                    not Named(Module)],
    ?assertEqual([], Missing).

%% caravan_cluster_config -> ["_cluster_config", "_config"].
suffixes(Module) ->
    Parts = string:split(Module, "_", all),
    Tails = [lists:nthtail(N, Parts) || N <- lists:seq(1, length(Parts) - 1)],
    [lists:flatten(["_" | lists:join("_", T)]) || T <- Tails].

line_count(File) ->
    {ok, Bin} = file:read_file(File),
    length(binary:matches(Bin, <<"\n">>)).

c_files_stay_small_test() ->
    Big = [{F, N} || F <- filelib:wildcard("port_src/**/*.[ch]"),
                     N <- [line_count(F)], N > ?MAX_C_LINES],
    ?assertEqual([], Big).

erlang_modules_stay_small_test() ->
    Big = [{F, N} || F <- erl_modules(), N <- [line_count(F)], N > ?MAX_ERL_LINES],
    ?assertEqual([], Big).

every_file_begins_with_what_it_owns_test() ->
    Opening = fun(F) ->
                      {ok, Bin} = file:read_file(F),
                      Bin
              end,
    Bare = [F || F <- filelib:wildcard("port_src/**/*.[ch]"),
                 not lists:prefix("/*", binary_to_list(binary:part(Opening(F), 0, 2)))] ++
           [F || F <- erl_modules(),
                 binary:first(Opening(F)) =/= $%],
    ?assertEqual([], Bare).

%% The scripts behind `make demo' (the README's first command) and `make
%% check-leaks' compile test servers from the folder they are given: that
%% folder must hold every module their escripts load. (After the test
%% servers moved to test/support/, `make demo' failed at its first step.)
scripts_find_the_test_servers_they_load_test() ->
    Missing = [{Script, File}
               || {Script, Escript} <- [{"scripts/demo.sh", "scripts/demo.escript"},
                                        {"scripts/check-leaks.sh", "scripts/check_leaks.escript"}],
                  Dir <- [script_test_dir(Script)],
                  Module <- loaded_modules(Escript),
                  File <- [filename:join(Dir, Module ++ ".erl")],
                  not filelib:is_regular(File)],
    ?assertEqual([], Missing).

%% The last "$PWD/..." argument of the script, read from the project root.
script_test_dir(Script) ->
    {ok, Bin} = file:read_file(Script),
    {match, Args} = re:run(Bin, <<"\"\\$PWD/([^\"]*)\"">>, [global, {capture, all_but_first, list}]),
    lists:last(lists:append(Args)).

loaded_modules(Escript) ->
    {ok, Bin} = file:read_file(Escript),
    {match, [List]} = re:run(Bin, <<"load\\(TestDir, M\\) \\|\\| M <- \\[([^]]*)\\]">>,
                             [{capture, all_but_first, list}, dotall]),
    [string:trim(M) || M <- string:lexemes(List, ",\n")].
