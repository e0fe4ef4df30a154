%%% priv/caravan_port needs nothing a slim release image may lack: c-ares is
%%% linked statically (as ei is) and libcurl is loaded only on demand. Checked
%%% with ldd, and by running the program in a minimal root made of nothing but
%%% the C library's parts ldd lists (no libcares, no libcurl), with an empty
%%% LD_LIBRARY_PATH, where it must answer a dist_port request.
-module(caravan_static_tests).

-include_lib("eunit/include/eunit.hrl").

program() ->
    {ok, Path} = caravan_config:port_program(),
    Path.

ldd(Program) ->
    os:cmd("ldd " ++ Program).

ldd_lists_no_cares_and_no_curl_test() ->
    Out = ldd(program()),
    ?assertNotEqual(nomatch, string:find(Out, "libc.so"), Out),
    ?assertEqual(nomatch, string:find(Out, "libcares"), Out),
    ?assertEqual(nomatch, string:find(Out, "libcurl"), Out).

%% The absolute paths ldd prints that a slim image (debian:slim, distroless
%% base) always has: the C library's parts and the dynamic loader. Anything
%% else ldd lists (libcares.so.2 before it was linked statically) is left
%% out, as such an image would lack it.
ldd_files(Program) ->
    [F || Line <- string:split(ldd(Program), "\n", all),
          F <- string:lexemes(Line, " \t"),
          lists:prefix("/", F), is_libc_part(filename:basename(F))].

is_libc_part(Base) ->
    lists:any(fun(P) -> lists:prefix(P, Base) end,
              ["libc.so", "libm.so", "libdl.so", "libpthread.so", "librt.so", "ld-linux"]).

minimal_root_answers_dist_port_test_() ->
    {timeout, 60, fun minimal_root_answers_dist_port/0}.

minimal_root_answers_dist_port() ->
    Root = filename:join(["_build", "minimal-root-" ++ os:getpid()]),
    os:cmd("rm -rf " ++ Root),
    Program = program(),
    Files = ldd_files(Program),
    [begin
         Dest = filename:join(Root, tl(F)),
         ok = filelib:ensure_dir(Dest),
         {ok, _} = file:copy(F, Dest),
         ok = file:change_mode(Dest, 8#755)
     end || F <- Files],
    {ok, _} = file:copy(Program, filename:join(Root, "caravan_port")),
    ok = file:change_mode(filename:join(Root, "caravan_port"), 8#755),
    {ok, Tree} = file:list_dir(Root),
    ?debugFmt("minimal root ~s: ~p from ldd ~p", [Root, Tree, Files]),
    %% Root may chroot directly; anyone else through a user namespace.
    {Exe, Args} = case string:trim(os:cmd("id -u")) of
                      "0" -> {os:find_executable("chroot"), [Root, "/caravan_port"]};
                      _ -> {os:find_executable("unshare"), ["-r", "chroot", Root, "/caravan_port"]}
                  end,
    Port = open_port({spawn_executable, Exe},
                     [{args, Args}, {env, [{"LD_LIBRARY_PATH", ""}]},
                      {packet, 4}, binary, exit_status, use_stdio]),
    true = port_command(Port, term_to_binary({7, dist_port, #{name => <<"app-4371">>,
                                                            default => 4370}})),
    Reply = receive
                {Port, {data, Bin}} -> binary_to_term(Bin);
                {Port, {exit_status, S}} -> {exited, S}
            after 10000 -> timeout
            end,
    catch_close(Port),
    os:cmd("rm -rf " ++ Root),
    ?assertEqual({7, ok, 4371}, Reply).

catch_close(Port) ->
    try port_close(Port) catch error:badarg -> ok end.
