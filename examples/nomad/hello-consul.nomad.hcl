# The hello release (examples/hello_rebar3) on Nomad, discovered through
# Consul. Nomad picks a random port for distribution ("dist"); the node
# name carries it, so peers need no epmd and no port lookup:
#   hello-<NOMAD_PORT_dist>@<NOMAD_IP_dist>
# The service registers that port in Consul; caravan asks Consul's DNS
# (the local agent, 127.0.0.1:8600) for hello-dist.service.consul.
#
# The cookie comes from a Nomad variable:
#   nomad var put nomad/jobs/hello cookie="$(openssl rand -hex 32)"

job "hello" {
  datacenters = ["dc1"]

  group "hello" {
    count = 3

    network {
      port "dist" {}
    }

    service {
      name     = "hello-dist"
      port     = "dist"
      provider = "consul"

      check {
        type     = "tcp"
        port     = "dist"
        interval = "5s"
        timeout  = "2s"
      }
    }

    task "hello" {
      driver = "exec"

      config {
        command = "local/hello/bin/hello"
        args    = ["foreground"]
      }

      artifact {
        source      = "https://artifacts.example.invalid/hello-0.1.0.tar.gz"
        destination = "local/hello"
      }

      template {
        destination = "secrets/dist.env"
        env         = true
        data        = <<-EOT
          NODE_NAME=hello-{{ env "NOMAD_PORT_dist" }}@{{ env "NOMAD_IP_dist" }}
          ERL_DIST_PORT={{ env "NOMAD_PORT_dist" }}
          DNS_SERVER=127.0.0.1:8600
          {{ with nomadVar "nomad/jobs/hello" }}RELEASE_COOKIE={{ .cookie }}{{ end }}
        EOT
      }

      resources {
        cpu    = 500
        memory = 256
      }
    }
  }
}
