%%% docs/protocol.md says every atom the C program may send is listed in
%%% caravan_port_frame:protocol_atoms/0 (replies are decoded with [safe], which
%%% refuses unknown atoms). This checks the C sources against that list: any
%%% atom-like string literal in port_src/ must be listed, or be a request key.
-module(caravan_protocol_tests).

-include_lib("eunit/include/eunit.hrl").

%% Keys the Erlang side sends; atoms on that side already.
-define(REQUEST_KEYS, ["name", "default", "delay_ms", "dist_port", "info", "ping",
                       "srv", "addr", "servers", "timeout_ms", "tries", "transport", "family",
                       "resolv_conf", "tcp", "udp", "any", "inet", "inet6",
                       "consul_health", "nomad_services", "url", "service", "token",
                       "wait_ms", "max_bytes", "ca_file", "cert_file", "key_file", "tag", "dc",
                       "passing", "tagged_address", "namespace", "true", "false",
                       "per_page", "proxy", "none",
                       "consistency", "cached", "max_stale_ms", "cancel",
                       "consul_register", "consul_deregister", "consul_check_pass"]).

c_atoms_are_known_test() ->
    Root = filename:dirname(filename:dirname(?FILE)),
    %% These print text or build URLs and JSON; they send no terms.
    NoTerms = ["cli.c", "cli_kill.c", "main.c", "json.c", "catalog_request.c", "http_proxy.c",
               "register.c"],
    Files = [F || F <- filelib:wildcard(filename:join([Root, "port_src", "**", "*.c"])),
                  not lists:member(filename:basename(F), NoTerms)],
    ?assertNotEqual([], Files),
    %% libcurl's symbol names (looked up with dlsym) are not atoms either.
    Literals = [L || L <- lists:usort(lists:append([literals(F) || F <- Files])),
                     not lists:prefix("curl_", L)],
    Known = [atom_to_list(A) || A <- caravan_port_frame:protocol_atoms()] ++ ?REQUEST_KEYS,
    ?assertEqual([], Literals -- Known).

literals(File) ->
    {ok, Text} = file:read_file(File),
    case re:run(Text, <<"\"([a-z][a-z_]*)\"">>, [global, {capture, all_but_first, list}]) of
        {match, Matches} -> [M || [M] <- Matches];
        nomatch -> []
    end.
