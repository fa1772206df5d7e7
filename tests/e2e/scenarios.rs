// filled by the scenario suite
