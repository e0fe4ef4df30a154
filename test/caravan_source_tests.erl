%%% Source checks OTP 25 cannot make for us: OTP 29 deprecates old-style
%%% `catch Expr' and warns on it by default, so a dependent's build of caravan
%%% would carry the warning (and fail where warnings are errors). This test
%%% parses every module under erl_src/ and fails on any `catch' expression node;
%%% it also checks that the options a dependent compiles caravan with never
%%% turn warnings into errors.
-module(caravan_source_tests).

-include_lib("eunit/include/eunit.hrl").

project() ->
    %% rebar3 runs EUnit from the project root.
    {ok, Cwd} = file:get_cwd(),
    Cwd.

modules() ->
    filelib:wildcard(filename:join([project(), "erl_src", "**", "*.erl"])).

no_old_style_catch_test_() ->
    [{filename:basename(File), fun() -> ?assertEqual([], old_catches(File)) end}
     || File <- modules()].

modules_are_found_test() ->
    ?assert(length(modules()) >= 10).

%% The checker itself finds an old-style catch, and not a try...catch.
checker_finds_a_catch_test() ->
    File = filename:join(project(), "_build/caravan_source_tests_probe.erl"),
    ok = filelib:ensure_dir(File),
    ok = file:write_file(File, "-module(p).\n-export([f/0, g/0]).\n"
                         "f() -> try ok catch _:_ -> ok end.\n"
                         "g() -> [catch x || _ <- [1]].\n"),
    ?assertMatch([{old_style_catch, _, 4}], old_catches(File)),
    ok = file:delete(File).

%% Line numbers of every {'catch', Anno, Expr} node in the file's forms.
old_catches(File) ->
    {ok, Forms} = epp:parse_file(File, [{includes, [filename:join(project(), "erl_src")]}]),
    lists:append([find(F, File) || F <- Forms]).

find({'catch', Anno, Expr}, File) ->
    [{old_style_catch, filename:basename(File), erl_anno:line(Anno)} | find(Expr, File)];
find(T, File) when is_tuple(T) ->
    find(tuple_to_list(T), File);
find(L, File) when is_list(L) ->
    lists:append([find(E, File) || E <- L]);
find(_, _File) ->
    [].

%% rebar3 builds a dependency with the dependency's own top-level erl_opts:
%% warnings_as_errors there would break every dependent on a newer OTP's new
%% warning. It belongs to the project's own test profile only.
no_warnings_as_errors_for_dependents_test() ->
    {ok, Terms} = file:consult(filename:join(project(), "rebar.config")),
    ErlOpts = proplists:get_value(erl_opts, Terms, []),
    ?assertNot(lists:member(warnings_as_errors, ErlOpts)),
    Test = proplists:get_value(test, proplists:get_value(profiles, Terms, []), []),
    ?assert(lists:member(warnings_as_errors, proplists:get_value(erl_opts, Test, []))).
