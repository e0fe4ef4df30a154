%%% A stand-in libcurl.so.4 for the libcurl loader's tests (issue 23): its
%%% constructor sleeps SLOW_LIBCURL_MS (500 by default) and it has none of
%%% the curl symbols, so every load is slow and then fails. The program
%%% finds it before the real one through LD_LIBRARY_PATH (env/2).
%%% caravan_catalog_SUITE's group loader and caravan_loader_SUITE use it.
-module(caravan_test_slow_libcurl).

-export([build/1, env/2]).

-define(SOURCE,
        "#include <stdlib.h>\n"
        "#include <time.h>\n"
        "__attribute__((constructor)) static void slow(void)\n"
        "{\n"
        "    const char *ms = getenv(\"SLOW_LIBCURL_MS\");\n"
        "    long n = ms ? atol(ms) : 500;\n"
        "    struct timespec t = {n / 1000, (n % 1000) * 1000000L};\n"
        "    while (nanosleep(&t, &t) != 0)\n"
        "        ;\n"
        "}\n"
        "int slow_libcurl_is_not_libcurl = 1;\n").

%% @doc Builds the library in a folder of Dir (a test's priv_dir); returns
%% that folder, or why it could not be built (a test then skips).
-spec build(file:filename()) -> {ok, file:filename()} | {skip, string()}.
build(Dir) ->
    Lib = filename:join(Dir, "slow_libcurl"),
    ok = filelib:ensure_path(Lib),
    Src = filename:join(Lib, "slow_libcurl.c"),
    ok = file:write_file(Src, ?SOURCE),
    Out = os:cmd("cc -shared -fPIC -o " ++ filename:join(Lib, "libcurl.so.4") ++ " " ++ Src ++
                     " 2>&1 && echo built"),
    case lists:suffix("built\n", Out) of
        true -> {ok, Lib};
        false -> {skip, "cannot build the slow libcurl.so.4: " ++ Out}
    end.

%% @doc The environment that makes a program load it, its load taking Ms.
-spec env(file:filename(), non_neg_integer()) -> [{string(), string()}].
env(Lib, Ms) ->
    [{"LD_LIBRARY_PATH", Lib}, {"SLOW_LIBCURL_MS", integer_to_list(Ms)}].
